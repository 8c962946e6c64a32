/*
 * The BM25 scoring loop of index/bm25.py, compiled.
 *
 * top_positive() does in one pass per posting what the numpy path does in
 * several (gather the per-passage factor, multiply by the term weight,
 * scatter-add into the score buffer), remembers which passages it touched,
 * and selects the best k of them with a small heap instead of reading the
 * whole buffer back. Every score is computed with the same floating-point
 * operations, in the same order, as the numpy path, so both give the same
 * numbers bit for bit (the build turns floating-point contraction off).
 *
 * The caller (index/bm25.py) owns the arrays and guarantees their types:
 * a float64 score buffer with one zero per passage, uint16 passage lengths,
 * float64 factor tables indexed by length, uint32 ids, uint8/16/32 tfs,
 * sorted intp excluded ids, and a uint32 work array of more than BLOCK items.
 * Sizes, lengths and ids (ascending, below the number of passages) are still
 * checked here, so a damaged index cannot make it read or write out of bounds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    double score;
    uint32_t id;
} Entry;

/* a ranks below b: lower score, or the same score and a larger id. */
static inline int ranks_below(Entry a, Entry b) {
    return a.score < b.score || (a.score == b.score && a.id > b.id);
}

static void sift_down(Entry *heap, Py_ssize_t size, Py_ssize_t at) {
    for (;;) {
        Py_ssize_t low = at, left = 2 * at + 1, right = left + 1;
        if (left < size && ranks_below(heap[left], heap[low])) low = left;
        if (right < size && ranks_below(heap[right], heap[low])) low = right;
        if (low == at) return;
        Entry swap = heap[at];
        heap[at] = heap[low];
        heap[low] = swap;
        at = low;
    }
}

static void sift_up(Entry *heap, Py_ssize_t at) {
    while (at > 0) {
        Py_ssize_t parent = (at - 1) / 2;
        if (!ranks_below(heap[at], heap[parent])) return;
        Entry swap = heap[at];
        heap[at] = heap[parent];
        heap[parent] = swap;
        at = parent;
    }
}

static int best_first(const void *pa, const void *pb) {
    const Entry *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static inline uint32_t tf_at(const void *tfs, int width, Py_ssize_t i) {
    switch (width) {
        case 1: return ((const uint8_t *)tfs)[i];
        case 2: return ((const uint16_t *)tfs)[i];
        default: return ((const uint32_t *)tfs)[i];
    }
}

static int get_buffer(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t itemsize, const char *what) {
    if (PyObject_GetBuffer(obj, view, (writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) | PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (view->len % itemsize != 0) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes is not a whole number of %zd-byte items", what, view->len,
                     itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

typedef struct {
    double weight;
    double bound; /* the largest score the term adds to any passage */
    const uint32_t *ids;
    const void *tfs;
    int width;
    Py_ssize_t count, at;
    Py_ssize_t from, to; /* the postings in the current block */
    Py_buffer ids_view, tfs_view;
} Term;

static void release_terms(Term *terms, Py_ssize_t n) {
    for (Py_ssize_t t = 0; t < n; t++) {
        if (terms[t].ids_view.obj) PyBuffer_Release(&terms[t].ids_view);
        if (terms[t].tfs_view.obj) PyBuffer_Release(&terms[t].tfs_view);
    }
}

static int read_term(PyObject *item, Term *term, Py_ssize_t n) {
    PyObject *ids_obj, *tfs_obj;
    if (!PyArg_ParseTuple(item, "dOOid", &term->weight, &ids_obj, &tfs_obj, &term->width, &term->bound)) return -1;
    if (term->width != 1 && term->width != 2 && term->width != 4) {
        PyErr_Format(PyExc_ValueError, "tf width must be 1, 2 or 4, not %d", term->width);
        return -1;
    }
    if (get_buffer(ids_obj, &term->ids_view, 0, sizeof(uint32_t), "ids") < 0) return -1;
    term->ids = term->ids_view.buf;
    term->count = term->ids_view.len / (Py_ssize_t)sizeof(uint32_t);
    term->tfs = NULL;
    if (tfs_obj != Py_None) {
        if (get_buffer(tfs_obj, &term->tfs_view, 0, term->width, "tfs") < 0) return -1;
        if (term->tfs_view.len / term->width != term->count) {
            PyErr_SetString(PyExc_ValueError, "ids and tfs differ in length");
            return -1;
        }
        term->tfs = term->tfs_view.buf;
    }
    /* Strictly ascending ids below n: the block loop, the touched array and the binary searches rely on it. */
    for (Py_ssize_t i = 0; i < term->count; i++) {
        if ((Py_ssize_t)term->ids[i] >= n || (i > 0 && term->ids[i] <= term->ids[i - 1])) {
            PyErr_Format(PyExc_ValueError, "postings out of order or beyond the %zd passages of the index (id %u)", n,
                         term->ids[i]);
            return -1;
        }
    }
    return 0;
}

/*
 * The passages are scored in blocks small enough for their scores to stay in
 * the CPU cache: each term's postings are consumed block by block (ids are
 * ascending), then the block's touched passages are offered to the heap and
 * their scores reset.
 *
 * Terms come largest upper bound first. Once the heap holds k passages, its
 * lowest score is a floor the final k-th score can only exceed; the longest
 * suffix of terms whose bounds add up to less than that floor is "optional"
 * (MaxScore, Turtle & Flood 1995): a passage only they match cannot reach the
 * top k. The other terms are scored as usual; a passage whose partial score
 * plus the optional bounds cannot reach the floor is dropped, and the others
 * get the optional terms' contributions, either looked up by id (few such
 * passages) or by scanning those terms' postings in the block (many).
 *
 * Either way a passage's score is the sum of its contributions added in the
 * order of the terms, starting from 0.0: the same operations as the numpy
 * path, which receives the terms in the same order, so the same bits.
 */
#define BLOCK 16384
#define SLACK 1e-9 /* relative margin on the floor: bounds summed in another order may differ in their last bits */
#define LOOKUP_COST 8 /* a binary-search step against a sequential posting, roughly */

static inline double contribution(const Term *term, Py_ssize_t i, uint32_t id, const uint16_t *lengths,
                                  const double *unit, const double *norm, double k1_plus_1) {
    uint32_t tf = term->tfs ? tf_at(term->tfs, term->width, i) : 1;
    double factor;
    if (tf == 1) {
        factor = unit[lengths[id]];
    } else {
        double f = (double)tf;
        factor = f * k1_plus_1 / (f + norm[lengths[id]]);
    }
    return factor * term->weight;
}

/* The first position in [lo, hi) whose id is >= value (hi when none). */
static inline Py_ssize_t lower_bound(const uint32_t *ids, Py_ssize_t lo, Py_ssize_t hi, uint32_t value) {
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < value)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static inline Py_ssize_t log2_ceil(Py_ssize_t n) {
    Py_ssize_t bits = 1;
    while (n > 1) {
        n >>= 1;
        bits++;
    }
    return bits;
}

static inline void offer(Entry *heap, Py_ssize_t *size, Py_ssize_t k, Entry entry) {
    if (*size < k) {
        heap[*size] = entry;
        sift_up(heap, (*size)++);
    } else if (ranks_below(heap[0], entry)) {
        heap[0] = entry;
        sift_down(heap, *size, 0);
    }
}

static Py_ssize_t score_blocks(double *scores, const uint16_t *lengths, const double *unit, const double *norm,
                               uint16_t longest, Py_ssize_t n, double k1_plus_1, Term *terms, Py_ssize_t n_terms,
                               const double *bound_after, const Py_ssize_t *excluded, Py_ssize_t n_excluded,
                               uint32_t *touched, Entry *heap, Py_ssize_t k, uint32_t *bad, Py_ssize_t *skipped) {
    Py_ssize_t size = 0, next_excluded = 0;
    for (Py_ssize_t start = 0; start < n; start += BLOCK) {
        uint32_t end = (uint32_t)(start + BLOCK < n ? start + BLOCK : n);
        double floor = size == k && k > 0 ? heap[0].score : 0.0;
        double reachable = floor - SLACK * floor;
        /* bound_after[j]: the bounds of terms j.. summed; the optional terms start at `first_optional`. */
        Py_ssize_t first_optional = n_terms;
        while (floor > 0.0 && first_optional > 0 && bound_after[first_optional - 1] < reachable) first_optional--;

        Py_ssize_t n_touched = 0;
        for (Py_ssize_t t = 0; t < n_terms; t++) {
            Term *term = &terms[t];
            term->from = term->at;
            if (t >= first_optional) {
                term->to = term->at = lower_bound(term->ids, term->at, term->count, end);
                continue;
            }
            Py_ssize_t i = term->at;
            for (; i < term->count && term->ids[i] < end; i++) {
                uint32_t id = term->ids[i];
                if (lengths[id] > longest) {
                    for (Py_ssize_t j = 0; j < n_touched; j++) scores[touched[j]] = 0.0;
                    *bad = id;
                    return -1;
                }
                double old = scores[id];
                double now = old + contribution(term, i, id, lengths, unit, norm, k1_plus_1);
                scores[id] = now;
                touched[n_touched] = id; /* kept (counted) only when this is the passage's first score */
                n_touched += (old == 0.0) & (now != 0.0);
            }
            term->to = term->at = i;
        }
        while (next_excluded < n_excluded && excluded[next_excluded] < (Py_ssize_t)end) {
            if (excluded[next_excluded] >= start) scores[excluded[next_excluded]] = 0.0;
            next_excluded++;
        }
        if (first_optional < n_terms) {
            /* Drop the passages that cannot reach the floor; the rest are candidates. */
            Py_ssize_t candidates = 0, optional_postings = 0, lookup_steps = 0;
            double optional_bound = bound_after[first_optional];
            for (Py_ssize_t j = 0; j < n_touched; j++) {
                uint32_t id = touched[j];
                if (scores[id] > 0.0 && scores[id] + optional_bound >= reachable)
                    touched[candidates++] = id;
                else
                    scores[id] = 0.0;
            }
            n_touched = candidates;
            for (Py_ssize_t t = first_optional; t < n_terms; t++) {
                optional_postings += terms[t].to - terms[t].from;
                lookup_steps += log2_ceil(terms[t].to - terms[t].from + 1);
            }
            if (candidates * lookup_steps * LOOKUP_COST < optional_postings) {
                for (Py_ssize_t j = 0; j < n_touched; j++) {
                    uint32_t id = touched[j];
                    double total = scores[id];
                    for (Py_ssize_t t = first_optional; t < n_terms && total > 0.0; t++) {
                        if (total + bound_after[t] < reachable) {
                            total = 0.0; /* cannot reach the floor any more */
                            break;
                        }
                        const Term *term = &terms[t];
                        Py_ssize_t at = lower_bound(term->ids, term->from, term->to, id);
                        if (at < term->to && term->ids[at] == id)
                            total = total + contribution(term, at, id, lengths, unit, norm, k1_plus_1);
                    }
                    scores[id] = total;
                }
                *skipped += optional_postings;
            } else {
                for (Py_ssize_t t = first_optional; t < n_terms; t++) {
                    const Term *term = &terms[t];
                    for (Py_ssize_t i = term->from; i < term->to; i++) {
                        uint32_t id = term->ids[i];
                        if (scores[id] != 0.0)
                            scores[id] = scores[id] + contribution(term, i, id, lengths, unit, norm, k1_plus_1);
                    }
                }
            }
        }
        for (Py_ssize_t j = 0; j < n_touched; j++) {
            uint32_t id = touched[j];
            Entry entry = {scores[id], id};
            scores[id] = 0.0;
            if (entry.score > 0.0) offer(heap, &size, k, entry);
        }
    }
    qsort(heap, (size_t)size, sizeof(Entry), best_first);
    return size;
}

PyDoc_STRVAR(top_positive_doc,
             "top_positive(buffer, lengths, unit, norm, k1_plus_1, terms, exclude, k, touched)\n"
             "-> (list[(id, score)], postings skipped)\n\n"
             "Exact BM25 top k (score desc, id asc; scores > 0) for terms with positive weights.\n"
             "buffer: float64 zeros, one per passage (zeros again on return); lengths: uint16 passage lengths;\n"
             "unit/norm: float64 factor at tf 1 and length norm, by length; terms: (weight, uint32 ascending ids,\n"
             "tfs or None, tf width in bytes, upper bound of its score), largest bound first; exclude: sorted\n"
             "intp ids or None; "
             "touched: uint32 work array of more than BLOCK items.");

static PyObject *top_positive(PyObject *self, PyObject *args) {
    PyObject *buffer_obj, *lengths_obj, *unit_obj, *norm_obj, *terms_obj, *exclude_obj, *touched_obj;
    double k1_plus_1;
    Py_ssize_t k;
    if (!PyArg_ParseTuple(args, "OOOOdOOnO", &buffer_obj, &lengths_obj, &unit_obj, &norm_obj, &k1_plus_1, &terms_obj,
                          &exclude_obj, &k, &touched_obj))
        return NULL;
    Py_buffer buffer = {0}, lengths = {0}, unit = {0}, norm = {0}, touched = {0}, exclude = {0};
    PyObject *result = NULL, *sequence = NULL;
    Entry *heap = NULL;
    Term *terms = NULL;
    double *bound_after = NULL;
    Py_ssize_t n_terms = 0, size = 0;

    if (get_buffer(buffer_obj, &buffer, 1, sizeof(double), "buffer") < 0) goto done;
    if (get_buffer(lengths_obj, &lengths, 0, sizeof(uint16_t), "lengths") < 0) goto done;
    if (get_buffer(unit_obj, &unit, 0, sizeof(double), "unit") < 0) goto done;
    if (get_buffer(norm_obj, &norm, 0, sizeof(double), "norm") < 0) goto done;
    if (get_buffer(touched_obj, &touched, 1, sizeof(uint32_t), "touched") < 0) goto done;
    Py_ssize_t n = buffer.len / (Py_ssize_t)sizeof(double);
    if (lengths.len / (Py_ssize_t)sizeof(uint16_t) != n || touched.len / (Py_ssize_t)sizeof(uint32_t) <= BLOCK ||
        unit.len != norm.len || unit.len < (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "buffer and lengths must cover the same passages, unit and norm all lengths");
        goto done;
    }
    const uint16_t *length_of = lengths.buf;
    Py_ssize_t tables = unit.len / (Py_ssize_t)sizeof(double);
    uint16_t longest = (uint16_t)(tables > 65536 ? 65535 : tables - 1);
    sequence = PySequence_Fast(terms_obj, "terms must be a sequence");
    if (sequence == NULL) goto done;
    Py_ssize_t wanted = PySequence_Fast_GET_SIZE(sequence);
    terms = PyMem_Calloc((size_t)(wanted > 0 ? wanted : 1), sizeof(Term));
    if (terms == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; n_terms < wanted; n_terms++) {
        if (read_term(PySequence_Fast_GET_ITEM(sequence, n_terms), &terms[n_terms], n) < 0) {
            n_terms++;
            goto done;
        }
    }
    const Py_ssize_t *excluded = NULL;
    Py_ssize_t n_excluded = 0;
    if (exclude_obj != Py_None) {
        if (get_buffer(exclude_obj, &exclude, 0, sizeof(Py_ssize_t), "exclude") < 0) goto done;
        excluded = exclude.buf;
        n_excluded = exclude.len / (Py_ssize_t)sizeof(Py_ssize_t);
        for (Py_ssize_t i = 1; i < n_excluded; i++) {
            if (excluded[i] < excluded[i - 1]) {
                PyErr_SetString(PyExc_ValueError, "excluded ids must be sorted");
                goto done;
            }
        }
    }
    if (k < 0) k = 0;
    if (k > n) k = n; /* no more results than passages (and no huge heap for a huge k) */
    heap = PyMem_Malloc(sizeof(Entry) * (size_t)(k > 0 ? k : 1));
    if (heap == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    bound_after = PyMem_Malloc(sizeof(double) * (size_t)(n_terms + 1));
    if (bound_after == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    bound_after[n_terms] = 0.0;
    for (Py_ssize_t t = n_terms - 1; t >= 0; t--) {
        if (!(terms[t].bound >= 0.0) || (t + 1 < n_terms && terms[t].bound < terms[t + 1].bound)) {
            PyErr_SetString(PyExc_ValueError, "terms must come largest (non-negative) upper bound first");
            goto done;
        }
        bound_after[t] = bound_after[t + 1] + terms[t].bound;
    }
    uint32_t bad = 0;
    Py_ssize_t skipped = 0;
    Py_BEGIN_ALLOW_THREADS
    size = score_blocks(buffer.buf, length_of, unit.buf, norm.buf, longest, n, k1_plus_1, terms, n_terms, bound_after,
                        excluded, n_excluded, touched.buf, heap, k, &bad, &skipped);
    Py_END_ALLOW_THREADS
    if (size < 0) { /* ids were checked in read_term: only a length can be out of range here */
        PyErr_Format(PyExc_ValueError, "passage %u is longer than the factor tables", bad);
        size = 0;
        goto done;
    }
    PyObject *best = PyList_New(size);
    if (best == NULL) goto done;
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *pair = Py_BuildValue("(kd)", (unsigned long)heap[i].id, heap[i].score);
        if (pair == NULL) {
            Py_DECREF(best);
            goto done;
        }
        PyList_SET_ITEM(best, i, pair);
    }
    result = Py_BuildValue("(Nn)", best, skipped);

done:
    if (terms) release_terms(terms, n_terms);
    PyMem_Free(terms);
    PyMem_Free(heap);
    PyMem_Free(bound_after);
    Py_XDECREF(sequence);
    if (buffer.obj) PyBuffer_Release(&buffer);
    if (lengths.obj) PyBuffer_Release(&lengths);
    if (unit.obj) PyBuffer_Release(&unit);
    if (norm.obj) PyBuffer_Release(&norm);
    if (touched.obj) PyBuffer_Release(&touched);
    if (exclude.obj) PyBuffer_Release(&exclude);
    return result;
}

static PyMethodDef methods[] = {
    {"top_positive", top_positive, METH_VARARGS, top_positive_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_bm25_kernel", "The compiled BM25 scoring loop of index.bm25.", -1, methods,
};

PyMODINIT_FUNC PyInit__bm25_kernel(void) {
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "BLOCK", BLOCK) < 0) Py_CLEAR(m);
    return m;
}
