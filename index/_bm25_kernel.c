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
 * Sizes, lengths and ids are still checked here, so a damaged index cannot
 * make it read or write out of bounds.
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
    const uint32_t *ids;
    const void *tfs;
    int width;
    Py_ssize_t count, at;
    Py_buffer ids_view, tfs_view;
} Term;

static void release_terms(Term *terms, Py_ssize_t n) {
    for (Py_ssize_t t = 0; t < n; t++) {
        if (terms[t].ids_view.obj) PyBuffer_Release(&terms[t].ids_view);
        if (terms[t].tfs_view.obj) PyBuffer_Release(&terms[t].tfs_view);
    }
}

static int read_term(PyObject *item, Term *term) {
    PyObject *ids_obj, *tfs_obj;
    if (!PyArg_ParseTuple(item, "dOOi", &term->weight, &ids_obj, &tfs_obj, &term->width)) return -1;
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
    return 0;
}

/*
 * The passages are scored in blocks small enough for their scores to stay in
 * the CPU cache: each term's postings are consumed block by block (ids are
 * ascending), then the block's touched passages are offered to the heap and
 * their scores reset. A passage's contributions are still added term by term,
 * in the order of the terms, so the sums are those of the numpy path.
 */
#define BLOCK 16384

static Py_ssize_t score_blocks(double *scores, const uint16_t *lengths, const double *unit, const double *norm,
                               uint16_t longest, Py_ssize_t n, double k1_plus_1, Term *terms, Py_ssize_t n_terms,
                               const Py_ssize_t *excluded, Py_ssize_t n_excluded, uint32_t *touched, Entry *heap,
                               Py_ssize_t k, uint32_t *bad) {
    Py_ssize_t size = 0, next_excluded = 0;
    for (Py_ssize_t start = 0; start < n; start += BLOCK) {
        uint32_t end = (uint32_t)(start + BLOCK < n ? start + BLOCK : n);
        Py_ssize_t n_touched = 0;
        for (Py_ssize_t t = 0; t < n_terms; t++) {
            Term *term = &terms[t];
            const double weight = term->weight;
            Py_ssize_t i = term->at;
            for (; i < term->count && term->ids[i] < end; i++) {
                uint32_t id = term->ids[i];
                if (lengths[id] > longest) {
                    for (Py_ssize_t j = 0; j < n_touched; j++) scores[touched[j]] = 0.0;
                    *bad = id;
                    return -1;
                }
                uint32_t tf = term->tfs ? tf_at(term->tfs, term->width, i) : 1;
                double factor;
                if (tf == 1) {
                    factor = unit[lengths[id]];
                } else {
                    double f = (double)tf;
                    factor = f * k1_plus_1 / (f + norm[lengths[id]]);
                }
                double old = scores[id];
                double now = old + factor * weight;
                scores[id] = now;
                touched[n_touched] = id; /* kept (counted) only when this is the passage's first score */
                n_touched += (old == 0.0) & (now != 0.0);
            }
            term->at = i;
        }
        while (next_excluded < n_excluded && excluded[next_excluded] < (Py_ssize_t)end) {
            if (excluded[next_excluded] >= start) scores[excluded[next_excluded]] = 0.0;
            next_excluded++;
        }
        for (Py_ssize_t j = 0; j < n_touched; j++) {
            Entry entry = {scores[touched[j]], touched[j]};
            scores[touched[j]] = 0.0;
            if (!(entry.score > 0.0)) continue;
            if (size < k) {
                heap[size] = entry;
                sift_up(heap, size++);
            } else if (ranks_below(heap[0], entry)) {
                heap[0] = entry;
                sift_down(heap, size, 0);
            }
        }
    }
    for (Py_ssize_t t = 0; t < n_terms; t++) {
        if (terms[t].at < terms[t].count) { /* ids past the last passage: a damaged index */
            *bad = terms[t].ids[terms[t].at];
            return -2;
        }
    }
    qsort(heap, (size_t)size, sizeof(Entry), best_first);
    return size;
}

PyDoc_STRVAR(top_positive_doc,
             "top_positive(buffer, lengths, unit, norm, k1_plus_1, terms, exclude, k, touched) -> list[(id, score)]\n\n"
             "Exact BM25 top k (score desc, id asc; scores > 0) for terms with positive weights.\n"
             "buffer: float64 zeros, one per passage (zeros again on return); lengths: uint16 passage lengths;\n"
             "unit/norm: float64 factor at tf 1 and length norm, by length; terms: (weight, uint32 ascending ids,\n"
             "tfs or None, tf width in bytes); exclude: sorted intp ids or None; touched: uint32 work array\n"
             "of more than BLOCK items.");

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
        if (read_term(PySequence_Fast_GET_ITEM(sequence, n_terms), &terms[n_terms]) < 0) {
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
    heap = PyMem_Malloc(sizeof(Entry) * (size_t)(k > 0 ? k : 1));
    if (heap == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    uint32_t bad = 0;
    Py_BEGIN_ALLOW_THREADS
    size = score_blocks(buffer.buf, length_of, unit.buf, norm.buf, longest, n, k1_plus_1, terms, n_terms, excluded,
                        n_excluded, touched.buf, heap, k, &bad);
    Py_END_ALLOW_THREADS
    if (size < 0) {
        if (size == -1)
            PyErr_Format(PyExc_ValueError, "passage %u is longer than the factor tables", bad);
        else
            PyErr_Format(PyExc_ValueError, "posting for passage %u beyond the %zd passages of the index", bad, n);
        size = 0;
        goto done;
    }
    result = PyList_New(size);
    if (result == NULL) goto done;
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *pair = Py_BuildValue("(kd)", (unsigned long)heap[i].id, heap[i].score);
        if (pair == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, pair);
    }

done:
    if (terms) release_terms(terms, n_terms);
    PyMem_Free(terms);
    PyMem_Free(heap);
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
