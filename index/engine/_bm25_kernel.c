/*
 * The BM25 scoring loop of index/engine/bm25.py, compiled.
 *
 * top_positive() does in one pass per posting what the numpy path does in
 * several (gather the per-passage factor, multiply by the term weight,
 * scatter-add into the score buffer), remembers which passages it touched,
 * and selects the best k of them with a small heap instead of reading the
 * whole buffer back. Every score is computed with the same floating-point
 * operations, in the same order, as the numpy path, so both give the same
 * numbers bit for bit (the build turns floating-point contraction off).
 *
 * The caller (index/engine/bm25.py) owns the arrays and guarantees their types:
 * a float64 score buffer of BLOCK zeros, one uint8 or uint16 length per
 * passage, non-negative float64 factor tables indexed by length, native uint32
 * ids or uint8/16/32 gaps between ids (as the postings blobs store them:
 * reading them here saves decoding them into ids first), uint8/16/32 tfs,
 * sorted intp excluded ids, and a uint32 work array of more than BLOCK items.
 * Sizes, lengths, tables and ids (ascending, below the number of passages) are
 * still checked here, so a damaged index cannot make it read or write out of
 * bounds: the ids of a term at every call, or once for all calls when it comes
 * as a CheckedPostings (check_postings), which only this file can make. A
 * CheckedPostings may also carry each posting's passage length, copied from
 * the lengths array at the check: read beside the gaps, they spare the loop a
 * random read in that array a posting (a megabyte at a million passages, whose
 * reads left the CPU cache cold for the Python that follows a query).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* Item i of an array of 1, 2 or 4-byte unsigned integers (tfs, gaps). Called with a constant width in the
 * loops compiled per width, where the switch folds away. memcpy: gaps and tfs read straight from a postings
 * blob need not be aligned (on x86 it is the same single load). */
static inline __attribute__((always_inline)) uint32_t unsigned_at(const void *values, int width, Py_ssize_t i) {
    switch (width) {
        case 1: return ((const uint8_t *)values)[i];
        case 2: {
            uint16_t v;
            memcpy(&v, (const char *)values + 2 * i, 2);
            return v;
        }
        default: {
            uint32_t v;
            memcpy(&v, (const char *)values + 4 * i, 4);
            return v;
        }
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
    const uint32_t *ids; /* the ids themselves (gap_width 0) */
    const void *gaps;    /* or the gaps between them (1, 2 or 4 bytes each), after `first` */
    int gap_width;
    const void *tfs;
    int width;
    Py_ssize_t count, at; /* postings; the next one to read */
    uint64_t next;        /* the id of posting `at` (when at < count) */
    Py_ssize_t from, to;  /* the postings in the current block */
    const uint32_t *block; /* their ids, when the term is optional in the block */
    const void *own_lengths; /* each posting's passage length (own_width bytes), or NULL: looked up by id */
    int own_width;
    Py_buffer ids_view, tfs_view;
} Term;

static void release_terms(Term *terms, Py_ssize_t n) {
    for (Py_ssize_t t = 0; t < n; t++) {
        if (terms[t].ids_view.obj) PyBuffer_Release(&terms[t].ids_view);
        if (terms[t].tfs_view.obj) PyBuffer_Release(&terms[t].tfs_view);
    }
}

/* Whether first + the gaps stays below n with no zero gap, for gaps of `gw` bytes: sum and min reductions the
 * compiler vectorises. */
static inline __attribute__((always_inline)) int gaps_fit(const void *gaps, Py_ssize_t n_gaps, uint64_t first,
                                                          Py_ssize_t n, const int gw) {
    uint64_t sum = first;
    uint32_t least = UINT32_MAX;
    for (Py_ssize_t i = 0; i < n_gaps; i++) {
        uint32_t g = unsigned_at(gaps, gw, i);
        sum += g;
        least = g < least ? g : least;
    }
    return least != 0 && sum < (uint64_t)n;
}

/* Strictly ascending ids below n: the block loop, the touched array and the binary searches rely on it. */
static int check_ids(const Term *term, Py_ssize_t n) {
    if (term->gap_width == 0) {
        for (Py_ssize_t i = 0; i < term->count; i++) {
            if ((Py_ssize_t)term->ids[i] >= n || (i > 0 && term->ids[i] <= term->ids[i - 1])) goto bad;
        }
        return 0;
    }
    /* Gaps: the sum gives the last id; a zero gap is a repeated id. */
    if (term->next >= (uint64_t)n) goto bad; /* also keeps the sum below 2**64 */
    Py_ssize_t gaps = term->count - 1;
    int fit;
    switch (term->gap_width) {
        case 1: fit = gaps_fit(term->gaps, gaps, term->next, n, 1); break;
        case 2: fit = gaps_fit(term->gaps, gaps, term->next, n, 2); break;
        default: fit = gaps_fit(term->gaps, gaps, term->next, n, 4);
    }
    if (fit) return 0;
bad:
    PyErr_Format(PyExc_ValueError, "postings out of order or beyond the %zd passages of the index", n);
    return -1;
}

/*
 * Postings checked once (check_postings), for every query that reads them after: their gaps are read from a
 * bytes object, which nothing can change, and their ids were found ascending and below `passages`. Only this
 * file makes these objects, so a term given as one needs no check. The tfs need none (any value is safe to
 * read) but are copied: an array they were read from could be resized (numpy's resize(refcheck=False)) and
 * its memory freed.
 */
typedef struct {
    PyObject_HEAD
    PyObject *blob; /* the bytes holding the gaps */
    void *tfs;      /* our copy, NULL when every tf is 1 */
    void *lengths;  /* each posting's passage length (lengths_width bytes), NULL when not given */
    const void *gaps;
    int gap_width, tf_width, lengths_width;
    uint64_t first;
    Py_ssize_t count, passages;
} Checked;

static void checked_dealloc(Checked *self) {
    PyMem_Free(self->tfs);
    PyMem_Free(self->lengths);
    Py_XDECREF(self->blob);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef checked_members[] = {
    {"count", T_PYSSIZET, offsetof(Checked, count), READONLY, "postings"},
    {"passages", T_PYSSIZET, offsetof(Checked, passages), READONLY, "every id is below this"},
    {NULL},
};

static PyTypeObject CheckedType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "corpusbot.index.engine._bm25_kernel.CheckedPostings",
    .tp_doc = "A term's postings, checked once by check_postings (made only there).",
    .tp_basicsize = sizeof(Checked),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)checked_dealloc,
    .tp_members = checked_members,
};

/* Each posting's passage length from `lengths_obj` (uint8 or uint16, one per passage) into checked->lengths, in
 * posting order: the scoring loop then reads them beside the gaps instead of one random byte a posting in the
 * whole array. `term` holds the checked ids (from its first one). 0, or -1 with an exception set. */
static int copy_lengths(Checked *checked, const Term *term, PyObject *lengths_obj) {
    Py_buffer lengths;
    if (PyObject_GetBuffer(lengths_obj, &lengths, PyBUF_C_CONTIGUOUS) < 0) return -1;
    int lw = (int)lengths.itemsize, result = -1;
    if ((lw != 1 && lw != 2) || lengths.len % lw != 0 || lengths.len / lw != checked->passages) {
        PyErr_SetString(PyExc_ValueError, "lengths must be uint8 or uint16, one per passage");
        goto done;
    }
    checked->lengths = PyMem_Malloc((size_t)(term->count * lw));
    if (checked->lengths == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    checked->lengths_width = lw;
    uint64_t id = term->next;
    for (Py_ssize_t i = 0; i < term->count; i++) {
        if (i > 0) id += unsigned_at(term->gaps, term->gap_width, i - 1);
        if (lw == 1)
            ((uint8_t *)checked->lengths)[i] = ((const uint8_t *)lengths.buf)[id];
        else
            ((uint16_t *)checked->lengths)[i] = ((const uint16_t *)lengths.buf)[id];
    }
    result = 0;
done:
    PyBuffer_Release(&lengths);
    return result;
}

PyDoc_STRVAR(check_postings_doc,
             "check_postings(blob, offset, gap_width, count, first, tfs, tf_width, passages, lengths=None)\n"
             "-> CheckedPostings\n\n"
             "A term's postings for top_positive, checked once: the count - 1 gaps of gap_width (1, 2 or 4) bytes\n"
             "at offset of blob (bytes; little-endian on a little-endian machine) after the first id, and tfs (one\n"
             "of tf_width bytes per posting) or None when all are 1. lengths (uint8 or uint16, one per passage, as\n"
             "top_positive takes them): each posting's is copied beside it, and top_positive then reads it there\n"
             "instead of looking it up by id (top_positive must get the same lengths). Raises ValueError unless the\n"
             "gaps lie within the blob and the ids ascend strictly below passages (and lengths has passages items).");

static PyObject *check_postings(PyObject *self, PyObject *args) {
    PyObject *blob, *tfs_obj, *first_obj, *lengths_obj = Py_None;
    Py_ssize_t offset, count, passages;
    int gap_width, tf_width;
    if (!PyArg_ParseTuple(args, "O!ninOOin|O", &PyBytes_Type, &blob, &offset, &gap_width, &count, &first_obj, &tfs_obj,
                          &tf_width, &passages, &lengths_obj))
        return NULL;
    if (!PyBytes_CheckExact(blob)) { /* a subclass could export other memory than its bytes */
        PyErr_SetString(PyExc_TypeError, "blob must be bytes");
        return NULL;
    }
    if (gap_width != 1 && gap_width != 2 && gap_width != 4) {
        PyErr_Format(PyExc_ValueError, "gap width must be 1, 2 or 4, not %d", gap_width);
        return NULL;
    }
    if (tf_width != 1 && tf_width != 2 && tf_width != 4) {
        PyErr_Format(PyExc_ValueError, "tf width must be 1, 2 or 4, not %d", tf_width);
        return NULL;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(blob);
    if (count < 1 || offset < 0 || offset > size || count - 1 > (size - offset) / gap_width) {
        PyErr_Format(PyExc_ValueError, "%zd postings from byte %zd do not fit in a %zd-byte blob", count, offset, size);
        return NULL;
    }
    unsigned long long first = PyLong_AsUnsignedLongLong(first_obj);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError, "the first passage id must be a non-negative integer below 2**64");
        return NULL;
    }
    Term term = {0};
    term.gaps = PyBytes_AS_STRING(blob) + offset;
    term.gap_width = gap_width;
    term.count = count;
    term.next = first;
    if (passages < 0 || check_ids(&term, passages) < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "passages must be non-negative");
        return NULL;
    }
    Checked *checked = PyObject_New(Checked, &CheckedType);
    if (checked == NULL) return NULL;
    checked->tfs = NULL;
    checked->lengths = NULL;
    checked->lengths_width = 0;
    checked->passages = passages;
    checked->blob = Py_NewRef(blob);
    if (lengths_obj != Py_None && copy_lengths(checked, &term, lengths_obj) < 0) goto fail;
    if (tfs_obj != Py_None) {
        Py_buffer tfs;
        if (get_buffer(tfs_obj, &tfs, 0, tf_width, "tfs") < 0) goto fail;
        if (tfs.len / tf_width != count) {
            PyErr_SetString(PyExc_ValueError, "ids and tfs differ in length");
            PyBuffer_Release(&tfs);
            goto fail;
        }
        checked->tfs = PyMem_Malloc((size_t)tfs.len);
        if (checked->tfs == NULL) {
            PyErr_NoMemory();
            PyBuffer_Release(&tfs);
            goto fail;
        }
        memcpy(checked->tfs, tfs.buf, (size_t)tfs.len);
        PyBuffer_Release(&tfs);
    }
    checked->gaps = term.gaps;
    checked->gap_width = gap_width;
    checked->tf_width = tf_width;
    checked->first = first;
    checked->count = count;
    checked->passages = passages;
    return (PyObject *)checked;
fail:
    Py_DECREF(checked);
    return NULL;
}

/* A term given as (weight, CheckedPostings, bound): no check but that it was checked against no more passages. */
static int read_checked_term(PyObject *item, Term *term, Py_ssize_t n) {
    Checked *checked;
    if (!PyArg_ParseTuple(item, "dO!d", &term->weight, &CheckedType, &checked, &term->bound)) return -1;
    if (!(term->weight >= 0.0)) {
        PyErr_SetString(PyExc_ValueError, "term weights must be non-negative");
        return -1;
    }
    if (checked->passages > n) {
        PyErr_Format(PyExc_ValueError, "postings checked against %zd passages, not the %zd of the index",
                     checked->passages, n);
        return -1;
    }
    /* The item (a tuple, kept by the caller's tuple of terms) holds `checked`, which holds the memory. */
    term->gaps = checked->gaps;
    term->gap_width = checked->gap_width;
    term->count = checked->count;
    term->next = checked->first;
    term->tfs = checked->tfs;
    term->width = checked->tf_width;
    term->own_lengths = checked->lengths;
    term->own_width = checked->lengths_width;
    return 0;
}

static int read_term(PyObject *item, Term *term, Py_ssize_t n) {
    PyObject *ids_obj, *tfs_obj, *first_obj;
    if (!PyTuple_Check(item)) {
        PyErr_SetString(PyExc_TypeError, "each term must be a tuple");
        return -1;
    }
    if (PyTuple_GET_SIZE(item) == 3) return read_checked_term(item, term, n);
    if (!PyArg_ParseTuple(item, "dOiOOid", &term->weight, &ids_obj, &term->gap_width, &first_obj, &tfs_obj,
                          &term->width, &term->bound))
        return -1;
    /* "K" would take -1 or 2**64 + 3 modulo 2**64; a first id must be a real one (checked against n below). */
    unsigned long long first = PyLong_AsUnsignedLongLong(first_obj);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError, "the first passage id must be a non-negative integer below 2**64");
        return -1;
    }
    /* A negative contribution can take a score back to 0.0, and the touched array would count it twice. */
    if (!(term->weight >= 0.0)) {
        PyErr_SetString(PyExc_ValueError, "term weights must be non-negative");
        return -1;
    }
    if (term->width != 1 && term->width != 2 && term->width != 4) {
        PyErr_Format(PyExc_ValueError, "tf width must be 1, 2 or 4, not %d", term->width);
        return -1;
    }
    if (term->gap_width == 0) {
        if (get_buffer(ids_obj, &term->ids_view, 0, sizeof(uint32_t), "ids") < 0) return -1;
        term->ids = term->ids_view.buf;
        term->count = term->ids_view.len / (Py_ssize_t)sizeof(uint32_t);
        term->next = term->count ? term->ids[0] : 0;
    } else if (term->gap_width == 1 || term->gap_width == 2 || term->gap_width == 4) {
        if (get_buffer(ids_obj, &term->ids_view, 0, term->gap_width, "gaps") < 0) return -1;
        term->gaps = term->ids_view.buf;
        term->count = term->ids_view.len / term->gap_width + 1;
        term->next = first;
    } else {
        PyErr_Format(PyExc_ValueError, "gap width must be 0 (ids), 1, 2 or 4, not %d", term->gap_width);
        return -1;
    }
    term->tfs = NULL;
    if (tfs_obj != Py_None) {
        if (get_buffer(tfs_obj, &term->tfs_view, 0, term->width, "tfs") < 0) return -1;
        if (term->tfs_view.len / term->width != term->count) {
            PyErr_SetString(PyExc_ValueError, "ids and tfs differ in length");
            return -1;
        }
        term->tfs = term->tfs_view.buf;
    }
    return check_ids(term, n);
}

/*
 * The passages are scored in blocks of BLOCK ids, all in one BLOCK-sized
 * score array that stays in the CPU cache from block to block and query to
 * query (a score array over every passage would be fetched from memory anew
 * by each query): each term's postings are consumed block by block (ids are
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

/* Term's posting i (passage `id`, a candidate: its length was checked when it was first scored, and is kept
 * within the tables all the same, in case a caller's buffer was not zeros). */
/* A posting's BM25 factor at weight 1: from the table at tf 1, else worked out (the numpy path's operations). */
static inline __attribute__((always_inline)) double tf_factor(uint32_t tf, uint32_t length, const double *unit,
                                                              const double *norm, double k1_plus_1) {
    if (tf == 1) return unit[length];
    double f = (double)tf;
    return f * k1_plus_1 / (f + norm[length]);
}

static inline double contribution(const Term *term, Py_ssize_t i, uint32_t id, const void *lengths, int lw,
                                  const double *unit, const double *norm, uint16_t longest, double k1_plus_1) {
    uint32_t tf = term->tfs ? unsigned_at(term->tfs, term->width, i) : 1;
    uint32_t length = term->own_lengths ? unsigned_at(term->own_lengths, lw, i) : unsigned_at(lengths, lw, id);
    length = length > longest ? longest : length;
    return tf_factor(tf, length, unit, norm, k1_plus_1) * term->weight;
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

/* lower_bound(ids, lo, count, value) for a `lo` below which every id is < value, in steps that grow from `lo`:
 * a value a few postings on costs a few reads instead of a search over the whole array. */
static inline Py_ssize_t gallop(const uint32_t *ids, Py_ssize_t lo, Py_ssize_t count, uint32_t value) {
    Py_ssize_t hi = lo, step = 1;
    while (hi < count && ids[hi] < value) {
        lo = hi + 1;
        hi += step;
        step <<= 1;
    }
    return lower_bound(ids, lo, hi < count ? hi : count, value);
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
    } else if (*size > 0 && ranks_below(heap[0], entry)) { /* (k == 0: nothing to keep) */
        heap[0] = entry;
        sift_down(heap, *size, 0);
    }
}

/*
 * Adds the term's postings below `end` to the scores and returns the new
 * number of touched passages, or -1 (with *bad set) on a passage longer than
 * the tables. Written once, compiled for each id and tf encoding (gw: 0 for
 * ids, else the gap width; tw: 0 when every tf is 1, else the tf width):
 * reading the gaps here saves decoding them into ids first.
 */
static inline __attribute__((always_inline)) Py_ssize_t
score_postings(Term *term, uint32_t start, uint32_t end, double *scores, const void *lengths, const double *unit,
               const double *norm, uint16_t longest, double k1_plus_1, uint32_t *touched, Py_ssize_t n_touched,
               uint32_t *bad, const int gw, const int tw, const int lw, const int own) {
    const Py_ssize_t count = term->count;
    const double weight = term->weight;
    Py_ssize_t i = term->at;
    uint64_t id = term->next;
    while (i < count && id < end) {
        uint32_t length = own ? unsigned_at(term->own_lengths, lw, i) : unsigned_at(lengths, lw, id);
        if (length > longest) {
            *bad = (uint32_t)id;
            return -1;
        }
        uint32_t tf = tw == 0 ? 1 : unsigned_at(term->tfs, tw, i);
        double old = scores[id - start];
        double now = old + tf_factor(tf, length, unit, norm, k1_plus_1) * weight;
        scores[id - start] = now;
        touched[n_touched] = (uint32_t)id; /* kept (counted) only when this is the passage's first score */
        n_touched += (old == 0.0) & (now != 0.0);
        i++;
        if (i < count) {
            id = gw == 0 ? term->ids[i] : id + unsigned_at(term->gaps, gw, i - 1);
        }
    }
    term->at = i;
    term->next = id;
    return n_touched;
}

/*
 * Runs CALL(gw, tw, lw, own) with the term's encoding as constants (gap width, tf width, lengths width, whether
 * its lengths are its own), so that each combination is compiled on its own and the loops test none of them.
 * Needs `term`, `lw` and CALL returning from the function.
 */
#define BY_OWN(CALL, gw, tw, lw)                                   \
    if (term->own_lengths != NULL) CALL(gw, tw, lw, 1) else CALL(gw, tw, lw, 0)
#define BY_LENGTHS(CALL, gw, tw)                                   \
    if (lw == 1) {                                                 \
        BY_OWN(CALL, gw, tw, 1)                                    \
    } else {                                                       \
        BY_OWN(CALL, gw, tw, 2)                                    \
    }
#define BY_TFS(CALL, gw)                                           \
    switch (term->tfs ? term->width : 0) {                         \
        case 0: BY_LENGTHS(CALL, gw, 0)                            \
        case 1: BY_LENGTHS(CALL, gw, 1)                            \
        case 2: BY_LENGTHS(CALL, gw, 2)                            \
        default: BY_LENGTHS(CALL, gw, 4)                           \
    }
#define BY_ENCODING(CALL)                                          \
    switch (term->gap_width) {                                     \
        case 0: BY_TFS(CALL, 0)                                    \
        case 1: BY_TFS(CALL, 1)                                    \
        case 2: BY_TFS(CALL, 2)                                    \
        default: BY_TFS(CALL, 4)                                   \
    }

#define SCORE(gw, tw, lw, own) \
    { return score_postings(term, start, end, scores, lengths, unit, norm, longest, k1p1, touched, nt, bad, gw, tw, lw, own); }

static Py_ssize_t score_term(Term *term, uint32_t start, uint32_t end, double *scores, const void *lengths, int lw, const double *unit,
                             const double *norm, uint16_t longest, double k1p1, uint32_t *touched, Py_ssize_t nt,
                             uint32_t *bad) {
    BY_ENCODING(SCORE)
}

/*
 * Adds the term's postings below `end` to the passages of the block that already have a score (an optional
 * term's, for the candidates: the other passages' scores were set back to 0.0), reading the gaps in place.
 * Their lengths were checked when they were first scored; kept within the tables all the same, in case a
 * caller's buffer was not zeros.
 */
static inline __attribute__((always_inline)) void
add_to_scored(Term *term, uint32_t start, uint32_t end, double *scores, const void *lengths, const double *unit,
              const double *norm, uint16_t longest, double k1_plus_1, const int gw, const int tw, const int lw,
              const int own) {
    const Py_ssize_t count = term->count;
    const double weight = term->weight;
    Py_ssize_t i = term->at;
    uint64_t id = term->next;
    while (i < count && id < end) {
        double old = scores[id - start];
        if (old != 0.0) {
            uint32_t length = own ? unsigned_at(term->own_lengths, lw, i) : unsigned_at(lengths, lw, id);
            length = length > longest ? longest : length;
            uint32_t tf = tw == 0 ? 1 : unsigned_at(term->tfs, tw, i);
            scores[id - start] = old + tf_factor(tf, length, unit, norm, k1_plus_1) * weight;
        }
        i++;
        if (i < count) {
            id = gw == 0 ? term->ids[i] : id + unsigned_at(term->gaps, gw, i - 1);
        }
    }
    term->at = i;
    term->next = id;
}

#define ADD(gw, tw, lw, own)                                                                              \
    {                                                                                                         \
        add_to_scored(term, start, end, scores, lengths, unit, norm, longest, k1p1, gw, tw, lw, own);        \
        return;                                                                                               \
    }

static void add_term(Term *term, uint32_t start, uint32_t end, double *scores, const void *lengths, int lw,
                     const double *unit, const double *norm, uint16_t longest, double k1p1) {
    BY_ENCODING(ADD)
}

/*
 * The top k of a query of one term: each passage gets one contribution, so its score is known at once and goes
 * straight to the heap (no score array, touched list or blocks). The same operations as the block loop: the
 * score is 0.0 plus the contribution, excluded passages and scores not above 0 are left out. Returns the heap's
 * size, or -1 (with *bad set) on a passage longer than the tables.
 */
static inline __attribute__((always_inline)) Py_ssize_t
score_alone(Term *term, const void *lengths, const double *unit, const double *norm, uint16_t longest,
            double k1_plus_1, const Py_ssize_t *excluded, Py_ssize_t n_excluded, Entry *heap, Py_ssize_t k,
            uint32_t *bad, const int gw, const int tw, const int lw, const int own) {
    const Py_ssize_t count = term->count;
    const double weight = term->weight;
    Py_ssize_t size = 0, next_excluded = 0;
    double lowest = 0.0; /* the heap's lowest score once it is full */
    uint64_t id = term->next;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (i > 0) id = gw == 0 ? term->ids[i] : id + unsigned_at(term->gaps, gw, i - 1);
        uint32_t length = own ? unsigned_at(term->own_lengths, lw, i) : unsigned_at(lengths, lw, id);
        if (length > longest) {
            *bad = (uint32_t)id;
            return -1;
        }
        uint32_t tf = tw == 0 ? 1 : unsigned_at(term->tfs, tw, i);
        double score = 0.0 + tf_factor(tf, length, unit, norm, k1_plus_1) * weight;
        if (!(score > 0.0) || score < lowest) continue;
        while (next_excluded < n_excluded && excluded[next_excluded] < (Py_ssize_t)id) next_excluded++;
        if (next_excluded < n_excluded && excluded[next_excluded] == (Py_ssize_t)id) continue;
        Entry entry = {score, (uint32_t)id};
        offer(heap, &size, k, entry);
        if (size == k && k > 0) lowest = heap[0].score;
    }
    return size;
}

#define ALONE(gw, tw, lw, own) \
    { return score_alone(term, lengths, unit, norm, longest, k1p1, excluded, n_excluded, heap, k, bad, gw, tw, lw, own); }

static Py_ssize_t score_one_term(Term *term, const void *lengths, int lw, const double *unit, const double *norm,
                                 uint16_t longest, double k1p1, const Py_ssize_t *excluded, Py_ssize_t n_excluded,
                                 Entry *heap, Py_ssize_t k, uint32_t *bad) {
    BY_ENCODING(ALONE)
}

/* Decodes the ids below `end` into `out` (gaps of `gw` bytes); returns how many. */
static inline __attribute__((always_inline)) Py_ssize_t decode_block(Term *term, uint32_t end, uint32_t *out,
                                                                     const int gw) {
    const Py_ssize_t count = term->count, from = term->at;
    Py_ssize_t i = from;
    uint64_t id = term->next;
    while (i < count && id < end) {
        out[i - from] = (uint32_t)id;
        i++;
        if (i < count) {
            id += unsigned_at(term->gaps, gw, i - 1);
        }
    }
    term->at = i;
    term->next = id;
    return i - from;
}

/* Moves past the term's postings below `end`, leaving their ids in term->block (decoded into `scratch` from gaps). */
static void skip_block(Term *term, uint32_t end, uint32_t *scratch) {
    term->from = term->at;
    if (term->gap_width == 0) {
        term->to = term->at = lower_bound(term->ids, term->at, term->count, end);
        term->block = term->ids + term->from;
        if (term->at < term->count) term->next = term->ids[term->at];
        return;
    }
    switch (term->gap_width) {
        case 1: decode_block(term, end, scratch, 1); break;
        case 2: decode_block(term, end, scratch, 2); break;
        default: decode_block(term, end, scratch, 4);
    }
    term->block = scratch;
    term->to = term->at;
}

static Py_ssize_t score_blocks(double *scores, const void *lengths, int lw, const double *unit, const double *norm,
                               uint16_t longest, Py_ssize_t n, double k1_plus_1, Term *terms, Py_ssize_t n_terms,
                               const double *bound_after, const Py_ssize_t *excluded, Py_ssize_t n_excluded,
                               uint32_t *touched, uint32_t **scratch, Entry *heap, Py_ssize_t k, uint32_t *bad,
                               Py_ssize_t *skipped) {
    Py_ssize_t size = 0, next_excluded = 0;
    if (n_terms == 1) {
        size = score_one_term(&terms[0], lengths, lw, unit, norm, longest, k1_plus_1, excluded, n_excluded, heap, k, bad);
        if (size < 0) return -1;
        qsort(heap, (size_t)size, sizeof(Entry), best_first);
        return size;
    }
    for (Py_ssize_t start = 0; start < n; start += BLOCK) {
        uint32_t end = (uint32_t)(start + BLOCK < n ? start + BLOCK : n);
        double floor = size == k && k > 0 ? heap[0].score : 0.0;
        double reachable = floor - SLACK * floor;
        /* bound_after[j]: the bounds of terms j.. summed; the optional terms start at `first_optional`. */
        Py_ssize_t first_optional = n_terms;
        while (floor > 0.0 && first_optional > 0 && bound_after[first_optional - 1] < reachable) first_optional--;

        Py_ssize_t n_touched = 0;
        for (Py_ssize_t t = 0; t < first_optional; t++) {
            Term *term = &terms[t];
            n_touched = score_term(term, (uint32_t)start, end, scores, lengths, lw, unit, norm, longest, k1_plus_1, touched, n_touched, bad);
            if (n_touched < 0) {
                for (Py_ssize_t j = 0; j < BLOCK; j++) scores[j] = 0.0; /* zeros again on return */
                return -1;
            }
        }
        while (next_excluded < n_excluded && excluded[next_excluded] < (Py_ssize_t)end) {
            if (excluded[next_excluded] >= start) scores[excluded[next_excluded] - start] = 0.0;
            next_excluded++;
        }
        if (first_optional < n_terms) {
            /* Drop the passages that cannot reach the floor; the rest are candidates. */
            Py_ssize_t candidates = 0, optional_postings = 0, lookup_steps = 0;
            double optional_bound = bound_after[first_optional];
            for (Py_ssize_t j = 0; j < n_touched; j++) {
                uint32_t id = touched[j];
                double score = scores[id - start];
                if (score > 0.0 && score + optional_bound >= reachable)
                    touched[candidates++] = id;
                else
                    scores[id - start] = 0.0;
            }
            n_touched = candidates;
            /* Looked up or scanned: decided on the postings each optional term can be expected to have in the
             * block (spread evenly over the passages left), as gaps must be decoded to be counted. */
            for (Py_ssize_t t = first_optional; t < n_terms; t++) {
                Py_ssize_t expected = (Py_ssize_t)((double)(terms[t].count - terms[t].at) * (double)(end - start) /
                                                   (double)(n - start));
                optional_postings += expected;
                lookup_steps += log2_ceil(expected + 1);
            }
            if (candidates * lookup_steps * LOOKUP_COST < optional_postings) {
                optional_postings = 0;
                for (Py_ssize_t t = first_optional; t < n_terms; t++) {
                    skip_block(&terms[t], end, scratch[t]);
                    optional_postings += terms[t].to - terms[t].from;
                }
                for (Py_ssize_t j = 0; j < n_touched; j++) {
                    uint32_t id = touched[j];
                    double total = scores[id - start];
                    for (Py_ssize_t t = first_optional; t < n_terms && total > 0.0; t++) {
                        if (total + bound_after[t] < reachable) {
                            total = 0.0; /* cannot reach the floor any more */
                            break;
                        }
                        const Term *term = &terms[t];
                        Py_ssize_t in_block = term->to - term->from;
                        Py_ssize_t at = lower_bound(term->block, 0, in_block, id);
                        if (at < in_block && term->block[at] == id)
                            total = total + contribution(term, term->from + at, id, lengths, lw, unit, norm, longest, k1_plus_1);
                    }
                    scores[id - start] = total;
                }
                *skipped += optional_postings;
            } else {
                for (Py_ssize_t t = first_optional; t < n_terms; t++)
                    add_term(&terms[t], (uint32_t)start, end, scores, lengths, lw, unit, norm, longest, k1_plus_1);
            }
        }
        /* Until the heap is full every passage with a score enters it; then only one not below its lowest. */
        Py_ssize_t j = 0;
        for (; j < n_touched && size < k; j++) {
            uint32_t id = touched[j];
            Entry entry = {scores[id - start], id};
            scores[id - start] = 0.0;
            if (entry.score > 0.0) offer(heap, &size, k, entry);
        }
        double lowest = size > 0 ? heap[0].score : 0.0;
        for (; j < n_touched; j++) {
            uint32_t id = touched[j];
            Entry entry = {scores[id - start], id};
            scores[id - start] = 0.0;
            if (entry.score >= lowest && entry.score > 0.0) {
                offer(heap, &size, k, entry);
                lowest = heap[0].score;
            }
        }
    }
    qsort(heap, (size_t)size, sizeof(Entry), best_first);
    return size;
}

PyDoc_STRVAR(top_positive_doc,
             "top_positive(buffer, lengths, unit, norm, k1_plus_1, terms, exclude, k, touched)\n"
             "-> (list[(id, score)], postings skipped)\n\n"
             "Exact BM25 top k (score desc, id asc; scores > 0) for terms with positive weights.\n"
             "buffer: float64 zeros, BLOCK of them (zeros again on return); lengths: uint8/16, one per passage;\n"
             "unit/norm: float64 factor at tf 1 and length norm, by length (none negative); terms: (weight, ids or\n"
             "gaps, gap width (0: uint32 ascending ids; 1, 2 or 4: the gaps between them, in bytes), first id (with\n"
             "gaps), tfs or None, tf width in bytes, upper bound of its score) or (weight, CheckedPostings, upper\n"
             "bound), largest bound first; exclude: sorted intp ids or None; "
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
    uint32_t *scratch_items = NULL, **scratch = NULL;
    Py_ssize_t n_terms = 0, size = 0;

    if (get_buffer(buffer_obj, &buffer, 1, sizeof(double), "buffer") < 0) goto done;
    if (PyObject_GetBuffer(lengths_obj, &lengths, PyBUF_C_CONTIGUOUS) < 0) goto done;
    /* uint8 when every passage is shorter than 256 tokens: half the memory to fetch lengths from. */
    int lw = (int)lengths.itemsize;
    if ((lw != 1 && lw != 2) || lengths.len % lw != 0) {
        PyErr_SetString(PyExc_ValueError, "lengths must be uint8 or uint16");
        goto done;
    }
    if (get_buffer(unit_obj, &unit, 0, sizeof(double), "unit") < 0) goto done;
    if (get_buffer(norm_obj, &norm, 0, sizeof(double), "norm") < 0) goto done;
    if (get_buffer(touched_obj, &touched, 1, sizeof(uint32_t), "touched") < 0) goto done;
    Py_ssize_t n = lengths.len / lw;
    if (buffer.len / (Py_ssize_t)sizeof(double) < BLOCK || touched.len / (Py_ssize_t)sizeof(uint32_t) <= BLOCK ||
        unit.len != norm.len || unit.len < (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "buffer needs BLOCK items, touched more, unit and norm all lengths");
        goto done;
    }
    Py_ssize_t tables = unit.len / (Py_ssize_t)sizeof(double);
    /* A negative contribution could take a score back to 0.0, and the touched array would count its passage
     * twice (and overflow): no factor may be negative, so neither may these (NaN is harmless). */
    const double *unit_of = unit.buf, *norm_of = norm.buf;
    int negative = k1_plus_1 < 0.0;
    for (Py_ssize_t i = 0; i < tables; i++) negative |= (unit_of[i] < 0.0) | (norm_of[i] < 0.0);
    if (negative) {
        PyErr_SetString(PyExc_ValueError, "k1_plus_1, unit and norm must be non-negative");
        goto done;
    }
    uint16_t longest = (uint16_t)(tables > 65536 ? 65535 : tables - 1);
    /* A tuple of its own: converting an item (a weight's __float__) runs Python code that could empty a list. */
    sequence = PySequence_Tuple(terms_obj);
    if (sequence == NULL) goto done;
    Py_ssize_t wanted = PyTuple_GET_SIZE(sequence);
    terms = PyMem_Calloc((size_t)(wanted > 0 ? wanted : 1), sizeof(Term));
    if (terms == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; n_terms < wanted; n_terms++) {
        if (read_term(PyTuple_GET_ITEM(sequence, n_terms), &terms[n_terms], n) < 0) {
            n_terms++;
            goto done;
        }
    }
    for (Py_ssize_t t = 0; t < n_terms; t++) {
        if (terms[t].own_lengths != NULL && terms[t].own_width != lw) {
            PyErr_SetString(PyExc_ValueError, "postings checked with lengths of another width than these");
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
    /* Where an optional term's ids in a block are decoded from its gaps: at most one block's worth each. */
    scratch = PyMem_Calloc((size_t)(n_terms > 0 ? n_terms : 1), sizeof(uint32_t *));
    Py_ssize_t scratch_size = 0;
    for (Py_ssize_t t = 0; t < n_terms; t++)
        if (terms[t].gap_width) scratch_size += terms[t].count < BLOCK ? terms[t].count : BLOCK;
    scratch_items = PyMem_Malloc(sizeof(uint32_t) * (size_t)(scratch_size > 0 ? scratch_size : 1));
    if (scratch == NULL || scratch_items == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t t = 0, at = 0; t < n_terms; t++) {
        scratch[t] = scratch_items + at;
        if (terms[t].gap_width) at += terms[t].count < BLOCK ? terms[t].count : BLOCK;
    }
    uint32_t bad = 0;
    Py_ssize_t skipped = 0;
    Py_BEGIN_ALLOW_THREADS
    size = score_blocks(buffer.buf, lengths.buf, lw, unit.buf, norm.buf, longest, n, k1_plus_1, terms, n_terms, bound_after,
                        excluded, n_excluded, touched.buf, scratch, heap, k, &bad, &skipped);
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
    PyMem_Free(scratch);
    PyMem_Free(scratch_items);
    Py_XDECREF(sequence);
    if (buffer.obj) PyBuffer_Release(&buffer);
    if (lengths.obj) PyBuffer_Release(&lengths);
    if (unit.obj) PyBuffer_Release(&unit);
    if (norm.obj) PyBuffer_Release(&norm);
    if (touched.obj) PyBuffer_Release(&touched);
    if (exclude.obj) PyBuffer_Release(&exclude);
    return result;
}

PyDoc_STRVAR(near_pairs_doc,
             "near_pairs(sketches, distinct, ids, threshold, unknown) -> list[(i, j)] or None\n\n"
             "The pairs i > j of positions in ids whose term sets may have a Jaccard similarity of at least\n"
             "threshold: neither their sizes (min < threshold x max) nor their 64-bit sketches rule it out (a bit\n"
             "one sketch has and the other lacks is a term only that set has). sketches: uint64, distinct: uint32,\n"
             "by passage id; ids: intp. None when an id is out of range or its count is `unknown`.");

static PyObject *near_pairs(PyObject *self, PyObject *args) {
    PyObject *sketches_obj, *distinct_obj, *ids_obj;
    double threshold;
    unsigned long unknown;
    if (!PyArg_ParseTuple(args, "OOOdk", &sketches_obj, &distinct_obj, &ids_obj, &threshold, &unknown)) return NULL;
    Py_buffer sketches = {0}, distinct = {0}, ids = {0};
    PyObject *result = NULL;
    uint64_t *sketch = NULL;
    int64_t *size = NULL;
    if (get_buffer(sketches_obj, &sketches, 0, sizeof(uint64_t), "sketches") < 0) goto done;
    if (get_buffer(distinct_obj, &distinct, 0, sizeof(uint32_t), "distinct") < 0) goto done;
    if (get_buffer(ids_obj, &ids, 0, sizeof(Py_ssize_t), "ids") < 0) goto done;
    Py_ssize_t passages = distinct.len / (Py_ssize_t)sizeof(uint32_t);
    if (sketches.len / (Py_ssize_t)sizeof(uint64_t) < passages) passages = sketches.len / (Py_ssize_t)sizeof(uint64_t);
    Py_ssize_t n = ids.len / (Py_ssize_t)sizeof(Py_ssize_t);
    const Py_ssize_t *id = ids.buf;
    sketch = PyMem_Malloc(sizeof(uint64_t) * (size_t)(n > 0 ? n : 1));
    size = PyMem_Malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    if (sketch == NULL || size == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (id[i] < 0 || id[i] >= passages || ((const uint32_t *)distinct.buf)[id[i]] == unknown) {
            result = Py_None;
            Py_INCREF(result);
            goto done;
        }
        sketch[i] = ((const uint64_t *)sketches.buf)[id[i]];
        size[i] = ((const uint32_t *)distinct.buf)[id[i]];
    }
    result = PyList_New(0);
    if (result == NULL) goto done;
    for (Py_ssize_t i = 1; i < n; i++) {
        for (Py_ssize_t j = 0; j < i; j++) {
            int64_t a = size[i], b = size[j];
            double smaller = (double)(a < b ? a : b), larger = (double)(a < b ? b : a);
            if (smaller < threshold * larger) continue; /* Jaccard <= min / max */
            int64_t lacking_i = __builtin_popcountll(sketch[i] & ~sketch[j]);
            int64_t lacking_j = __builtin_popcountll(sketch[j] & ~sketch[i]);
            int64_t shared = a - lacking_i < b - lacking_j ? a - lacking_i : b - lacking_j;
            double bound = (double)shared / (double)(a + b - shared);
            if (bound < threshold - 1e-9) continue; /* NaN (two empty sets) is kept, as a near-duplicate */
            PyObject *pair = Py_BuildValue("(nn)", i, j);
            if (pair == NULL || PyList_Append(result, pair) < 0) {
                Py_XDECREF(pair);
                Py_CLEAR(result);
                goto done;
            }
            Py_DECREF(pair);
        }
    }

done:
    PyMem_Free(sketch);
    PyMem_Free(size);
    if (sketches.obj) PyBuffer_Release(&sketches);
    if (distinct.obj) PyBuffer_Release(&distinct);
    if (ids.obj) PyBuffer_Release(&ids);
    return result;
}

PyDoc_STRVAR(article_scores_doc,
             "article_scores(terms, first, last, norm, k1_plus_1, out)\n\n"
             "BM25 of whole articles: for each term (weight, ids, tfs or None, tf width) in order and each article\n"
             "i, tf = the sum of the term's tfs over passage ids first[i]..last[i], and out[i] += weight * tf *\n"
             "k1_plus_1 / (tf + norm[i]) (these operations in this order, as the numpy path does them). ids:\n"
             "ascending uint32; first, last: intp; norm, out: float64, one per article.");

/* Adds each term's article BM25 to totals[i] for the articles i of first/last/norm (the loop of article_scores;
 * -1 with an exception set on a term it cannot read). */
static int add_article_scores(PyObject *sequence, const Py_ssize_t *from, const Py_ssize_t *to, const double *norm_of,
                              Py_ssize_t n, double k1_plus_1, double *totals) {
    for (Py_ssize_t t = 0; t < PyTuple_GET_SIZE(sequence); t++) {
        PyObject *ids_obj, *tfs_obj, *item = PyTuple_GET_ITEM(sequence, t);
        double weight;
        int width;
        if (!PyTuple_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "each term must be a tuple (weight, ids, tfs or None, tf width)");
            return -1;
        }
        if (!PyArg_ParseTuple(item, "dOOi", &weight, &ids_obj, &tfs_obj, &width)) return -1;
        if (width != 1 && width != 2 && width != 4) {
            PyErr_SetString(PyExc_ValueError, "tf width must be 1, 2 or 4");
            return -1;
        }
        Py_buffer ids = {0}, tfs = {0};
        if (get_buffer(ids_obj, &ids, 0, sizeof(uint32_t), "ids") < 0) return -1;
        if (tfs_obj != Py_None && get_buffer(tfs_obj, &tfs, 0, width, "tfs") < 0) {
            PyBuffer_Release(&ids);
            return -1;
        }
        Py_ssize_t count = ids.len / (Py_ssize_t)sizeof(uint32_t);
        if (tfs.obj && tfs.len / width != count) {
            PyErr_SetString(PyExc_ValueError, "tfs needs one item per id");
            PyBuffer_Release(&ids);
            PyBuffer_Release(&tfs);
            return -1;
        }
        const uint32_t *id_at = ids.buf;
        /* Articles come in passage order (the service's do): each search starts where the previous one ended, and
         * an article's run ends a few postings after it starts. Out of order, a search starts at 0. */
        Py_ssize_t previous_last = -1, after_previous = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            double tf = 0.0;
            if (from[i] <= to[i] && to[i] >= 0) {
                Py_ssize_t lo = previous_last >= 0 && from[i] > previous_last ? after_previous : 0;
                Py_ssize_t at = from[i] <= 0 ? 0 : from[i] > UINT32_MAX ? count : gallop(id_at, lo, count, (uint32_t)from[i]);
                Py_ssize_t end = to[i] >= UINT32_MAX ? count : gallop(id_at, at, count, (uint32_t)(to[i] + 1));
                previous_last = to[i];
                after_previous = end;
                if (tfs.obj)
                    for (; at < end; at++) tf += (double)unsigned_at(tfs.buf, width, at);
                else
                    tf = (double)(end - at);
            }
            double value = weight * tf;
            value = value * k1_plus_1;
            value = value / (tf + norm_of[i]);
            totals[i] += value;
        }
        PyBuffer_Release(&ids);
        if (tfs.obj) PyBuffer_Release(&tfs);
    }
    return 0;
}

static PyObject *article_scores(PyObject *self, PyObject *args) {
    PyObject *terms_obj, *first_obj, *last_obj, *norm_obj, *out_obj;
    double k1_plus_1;
    if (!PyArg_ParseTuple(args, "OOOOdO", &terms_obj, &first_obj, &last_obj, &norm_obj, &k1_plus_1, &out_obj))
        return NULL;
    Py_buffer first = {0}, last = {0}, norm = {0}, out = {0};
    PyObject *result = NULL, *sequence = NULL;
    if (get_buffer(first_obj, &first, 0, sizeof(Py_ssize_t), "first") < 0) goto done;
    if (get_buffer(last_obj, &last, 0, sizeof(Py_ssize_t), "last") < 0) goto done;
    if (get_buffer(norm_obj, &norm, 0, sizeof(double), "norm") < 0) goto done;
    if (get_buffer(out_obj, &out, 1, sizeof(double), "out") < 0) goto done;
    Py_ssize_t n = first.len / (Py_ssize_t)sizeof(Py_ssize_t);
    if (last.len != first.len || norm.len / (Py_ssize_t)sizeof(double) != n ||
        out.len / (Py_ssize_t)sizeof(double) != n) {
        PyErr_SetString(PyExc_ValueError, "first, last, norm and out need the same number of items");
        goto done;
    }
    /* A tuple of its own: converting an item (a weight's __float__) runs Python code that could empty a list. */
    sequence = PySequence_Tuple(terms_obj);
    if (sequence == NULL) goto done;
    if (add_article_scores(sequence, first.buf, last.buf, norm.buf, n, k1_plus_1, out.buf) < 0) goto done;
    result = Py_None;
    Py_INCREF(result);

done:
    Py_XDECREF(sequence);
    if (first.obj) PyBuffer_Release(&first);
    if (last.obj) PyBuffer_Release(&last);
    if (norm.obj) PyBuffer_Release(&norm);
    if (out.obj) PyBuffer_Release(&out);
    return result;
}

PyDoc_STRVAR(article_scores_of_doc,
             "article_scores_of(terms, of, first, last, norm, k1_plus_1, scale, passages) -> list[float]\n\n"
             "For each passage id of passages (intp), scale x the article_scores total of its article: of (intp) gives\n"
             "a passage's article number, first, last (intp) and norm (float64) are by article number. Each article\n"
             "is scored once, in article order, with the operations of article_scores.");

static int by_value(const void *a, const void *b) {
    Py_ssize_t x = *(const Py_ssize_t *)a, y = *(const Py_ssize_t *)b;
    return (x > y) - (x < y);
}

static PyObject *article_scores_of(PyObject *self, PyObject *args) {
    PyObject *terms_obj, *of_obj, *first_obj, *last_obj, *norm_obj, *passages_obj;
    double k1_plus_1, scale;
    if (!PyArg_ParseTuple(args, "OOOOOddO", &terms_obj, &of_obj, &first_obj, &last_obj, &norm_obj, &k1_plus_1, &scale,
                          &passages_obj))
        return NULL;
    Py_buffer of = {0}, first = {0}, last = {0}, norm = {0}, passages = {0};
    PyObject *result = NULL, *sequence = NULL;
    Py_ssize_t *numbers = NULL, *articles = NULL, *from = NULL, *to = NULL;
    double *norms = NULL, *totals = NULL;
    if (get_buffer(of_obj, &of, 0, sizeof(Py_ssize_t), "of") < 0) goto done;
    if (get_buffer(first_obj, &first, 0, sizeof(Py_ssize_t), "first") < 0) goto done;
    if (get_buffer(last_obj, &last, 0, sizeof(Py_ssize_t), "last") < 0) goto done;
    if (get_buffer(norm_obj, &norm, 0, sizeof(double), "norm") < 0) goto done;
    if (get_buffer(passages_obj, &passages, 0, sizeof(Py_ssize_t), "passages") < 0) goto done;
    Py_ssize_t n_articles = first.len / (Py_ssize_t)sizeof(Py_ssize_t);
    Py_ssize_t n_of = of.len / (Py_ssize_t)sizeof(Py_ssize_t), m = passages.len / (Py_ssize_t)sizeof(Py_ssize_t);
    if (last.len != first.len || norm.len / (Py_ssize_t)sizeof(double) != n_articles) {
        PyErr_SetString(PyExc_ValueError, "first, last and norm need one item per article number");
        goto done;
    }
    size_t size = (size_t)(m > 0 ? m : 1);
    numbers = PyMem_Malloc(size * sizeof(Py_ssize_t));
    articles = PyMem_Malloc(size * sizeof(Py_ssize_t));
    from = PyMem_Malloc(size * sizeof(Py_ssize_t));
    to = PyMem_Malloc(size * sizeof(Py_ssize_t));
    norms = PyMem_Malloc(size * sizeof(double));
    totals = PyMem_Calloc(size, sizeof(double));
    if (!numbers || !articles || !from || !to || !norms || !totals) {
        PyErr_NoMemory();
        goto done;
    }
    const Py_ssize_t *passage = passages.buf, *number_of = of.buf;
    for (Py_ssize_t i = 0; i < m; i++) {
        Py_ssize_t number = passage[i] >= 0 && passage[i] < n_of ? number_of[passage[i]] : -1;
        if (number < 0 || number >= n_articles) {
            PyErr_Format(PyExc_ValueError, "passage %zd has no article number below %zd", passage[i], n_articles);
            goto done;
        }
        numbers[i] = articles[i] = number;
    }
    qsort(articles, (size_t)m, sizeof(Py_ssize_t), by_value);
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < m; i++)
        if (k == 0 || articles[i] != articles[k - 1]) articles[k++] = articles[i];
    const Py_ssize_t *first_of = first.buf, *last_of = last.buf;
    const double *norm_of = norm.buf;
    for (Py_ssize_t j = 0; j < k; j++) {
        from[j] = first_of[articles[j]];
        to[j] = last_of[articles[j]];
        norms[j] = norm_of[articles[j]];
    }
    /* A tuple of its own: converting an item (a weight's __float__) runs Python code that could empty a list. */
    sequence = PySequence_Tuple(terms_obj);
    if (sequence == NULL) goto done;
    if (add_article_scores(sequence, from, to, norms, k, k1_plus_1, totals) < 0) goto done;
    PyObject *scores = PyList_New(m);
    if (scores == NULL) goto done;
    for (Py_ssize_t i = 0; i < m; i++) {
        Py_ssize_t lo = 0, hi = k; /* the position of its article among the distinct ones */
        while (lo < hi) {
            Py_ssize_t mid = lo + (hi - lo) / 2;
            if (articles[mid] < numbers[i]) lo = mid + 1;
            else hi = mid;
        }
        PyObject *value = PyFloat_FromDouble(scale * totals[lo]);
        if (value == NULL) {
            Py_DECREF(scores);
            goto done;
        }
        PyList_SET_ITEM(scores, i, value);
    }
    result = scores;

done:
    Py_XDECREF(sequence);
    PyMem_Free(numbers);
    PyMem_Free(articles);
    PyMem_Free(from);
    PyMem_Free(to);
    PyMem_Free(norms);
    PyMem_Free(totals);
    if (of.obj) PyBuffer_Release(&of);
    if (first.obj) PyBuffer_Release(&first);
    if (last.obj) PyBuffer_Release(&last);
    if (norm.obj) PyBuffer_Release(&norm);
    if (passages.obj) PyBuffer_Release(&passages);
    return result;
}

/* The terms passages of `length` terms (the first `skipped` their title's) take in all, or -1 (an exception set)
 * when a count is negative or they take more than the `count` term ids there are. */
static Py_ssize_t terms_of_passages(const int64_t *length, const int64_t *skipped, Py_ssize_t n, Py_ssize_t count) {
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (length[i] < 0 || skipped[i] < 0 || length[i] > count - total) {
            PyErr_SetString(PyExc_ValueError, "passage lengths must be non-negative and within term_ids");
            return -1;
        }
        total += length[i];
    }
    return total;
}

PyDoc_STRVAR(passage_sketches_doc,
             "passage_sketches(term_ids, lengths, skip, bits, sketches, distinct)\n\n"
             "Each passage's term-set sketch and distinct-term count: passage i has the next lengths[i] of term_ids\n"
             "(int32), of which the first skip[i] (its title's) are left out; bits: uint64, each term id's sketch\n"
             "bit; sketches (uint64) and distinct (uint32): one per passage, written. lengths, skip: int64.");

static PyObject *passage_sketches(PyObject *self, PyObject *args) {
    PyObject *ids_obj, *lengths_obj, *skip_obj, *bits_obj, *sketches_obj, *distinct_obj;
    if (!PyArg_ParseTuple(args, "OOOOOO", &ids_obj, &lengths_obj, &skip_obj, &bits_obj, &sketches_obj, &distinct_obj))
        return NULL;
    Py_buffer ids = {0}, lengths = {0}, skip = {0}, bits = {0}, sketches = {0}, distinct = {0};
    PyObject *result = NULL;
    Py_ssize_t *seen = NULL;
    if (get_buffer(ids_obj, &ids, 0, sizeof(int32_t), "term_ids") < 0) goto done;
    if (get_buffer(lengths_obj, &lengths, 0, sizeof(int64_t), "lengths") < 0) goto done;
    if (get_buffer(skip_obj, &skip, 0, sizeof(int64_t), "skip") < 0) goto done;
    if (get_buffer(bits_obj, &bits, 0, sizeof(uint64_t), "bits") < 0) goto done;
    if (get_buffer(sketches_obj, &sketches, 1, sizeof(uint64_t), "sketches") < 0) goto done;
    if (get_buffer(distinct_obj, &distinct, 1, sizeof(uint32_t), "distinct") < 0) goto done;
    Py_ssize_t n = lengths.len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t count = ids.len / (Py_ssize_t)sizeof(int32_t);
    Py_ssize_t vocabulary = bits.len / (Py_ssize_t)sizeof(uint64_t);
    if (skip.len != lengths.len || sketches.len / (Py_ssize_t)sizeof(uint64_t) != n ||
        distinct.len / (Py_ssize_t)sizeof(uint32_t) != n) {
        PyErr_SetString(PyExc_ValueError, "lengths, skip, sketches and distinct need one item per passage");
        goto done;
    }
    const int64_t *length = lengths.buf, *skipped = skip.buf;
    const int32_t *term = ids.buf;
    const uint64_t *bit = bits.buf;
    Py_ssize_t total = terms_of_passages(length, skipped, n, count);
    if (total < 0) goto done;
    seen = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(vocabulary > 0 ? vocabulary : 1));
    if (seen == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t v = 0; v < vocabulary; v++) seen[v] = -1;
    uint64_t *sketch_of = sketches.buf;
    uint32_t *distinct_of = distinct.buf;
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t sketch = 0;
        uint32_t different = 0;
        Py_ssize_t end = at + length[i];
        for (Py_ssize_t t = at + (skipped[i] < length[i] ? skipped[i] : length[i]); t < end; t++) {
            int32_t id = term[t];
            if (id < 0 || id >= vocabulary) {
                PyErr_Format(PyExc_ValueError, "term id %d has no sketch bit (bits holds %zd)", id, vocabulary);
                goto done;
            }
            if (seen[id] != i) {
                seen[id] = i;
                different++;
                sketch |= bit[id];
            }
        }
        sketch_of[i] = sketch;
        distinct_of[i] = different;
        at = end;
    }
    result = Py_None;
    Py_INCREF(result);

done:
    PyMem_Free(seen);
    if (ids.obj) PyBuffer_Release(&ids);
    if (lengths.obj) PyBuffer_Release(&lengths);
    if (skip.obj) PyBuffer_Release(&skip);
    if (bits.obj) PyBuffer_Release(&bits);
    if (sketches.obj) PyBuffer_Release(&sketches);
    if (distinct.obj) PyBuffer_Release(&distinct);
    return result;
}

PyDoc_STRVAR(contains_doc,
             "contains(ids, wanted) -> list[bool]\n\n"
             "For each passage id of wanted (ints, best ascending), whether the ascending uint32 ids hold it: each\n"
             "search starts where the previous one ended when the ids come in order.");

static PyObject *contains(PyObject *self, PyObject *args) {
    PyObject *ids_obj, *wanted_obj;
    if (!PyArg_ParseTuple(args, "OO", &ids_obj, &wanted_obj)) return NULL;
    Py_buffer ids = {0};
    PyObject *result = NULL, *wanted = NULL;
    if (get_buffer(ids_obj, &ids, 0, sizeof(uint32_t), "ids") < 0) goto done;
    /* A tuple of its own: an item's __index__ runs Python code that could empty a list. */
    wanted = PySequence_Tuple(wanted_obj);
    if (wanted == NULL) goto done;
    const uint32_t *id = ids.buf;
    Py_ssize_t count = ids.len / (Py_ssize_t)sizeof(uint32_t), n = PyTuple_GET_SIZE(wanted), lo = 0;
    long long previous = -1;
    PyObject *found = PyList_New(n);
    if (found == NULL) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        long long value = PyLong_AsLongLong(PyTuple_GET_ITEM(wanted, i));
        if (value == -1 && PyErr_Occurred()) {
            Py_DECREF(found);
            goto done;
        }
        int holds = 0;
        if (value >= 0 && value <= (long long)UINT32_MAX) {
            /* below lo every id is < previous, so < value when value > previous */
            Py_ssize_t at = gallop(id, value > previous ? lo : 0, count, (uint32_t)value);
            holds = at < count && id[at] == (uint32_t)value;
            lo = at;
            previous = value;
        }
        PyList_SET_ITEM(found, i, PyBool_FromLong(holds));
    }
    result = found;

done:
    Py_XDECREF(wanted);
    if (ids.obj) PyBuffer_Release(&ids);
    return result;
}

PyDoc_STRVAR(with_pair_bit_doc,
             "with_pair_bit(sketches, ids, bits) -> list[list[int]]\n\n"
             "For each bit of bits (0-255), the positions in ids (intp passage ids) of the passages whose 32-byte row of\n"
             "sketches (the pair_sketch blob) has it: the ones that may hold that pair.");

static PyObject *with_pair_bit(PyObject *self, PyObject *args) {
    PyObject *sketches_obj, *ids_obj, *bits_obj;
    if (!PyArg_ParseTuple(args, "OOO", &sketches_obj, &ids_obj, &bits_obj)) return NULL;
    Py_buffer sketches = {0}, ids = {0};
    PyObject *result = NULL, *bits = NULL, *found = NULL;
    if (get_buffer(sketches_obj, &sketches, 0, 32, "sketches") < 0) goto done;
    if (get_buffer(ids_obj, &ids, 0, sizeof(Py_ssize_t), "ids") < 0) goto done;
    /* A tuple of its own: an item's __index__ runs Python code that could empty a list. */
    bits = PySequence_Tuple(bits_obj);
    if (bits == NULL) goto done;
    const uint8_t *rows = sketches.buf;
    const Py_ssize_t *id = ids.buf;
    Py_ssize_t n_rows = sketches.len / 32, n = ids.len / (Py_ssize_t)sizeof(Py_ssize_t);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (id[i] < 0 || id[i] >= n_rows) {
            PyErr_Format(PyExc_ValueError, "passage %zd has no row in the %zd sketches", id[i], n_rows);
            goto done;
        }
    }
    found = PyList_New(PyTuple_GET_SIZE(bits));
    if (found == NULL) goto done;
    for (Py_ssize_t b = 0; b < PyTuple_GET_SIZE(bits); b++) {
        long bit = PyLong_AsLong(PyTuple_GET_ITEM(bits, b));
        if (bit == -1 && PyErr_Occurred()) goto done;
        if (bit < 0 || bit > 255) {
            PyErr_Format(PyExc_ValueError, "a pair bit is 0-255, not %ld", bit);
            goto done;
        }
        PyObject *positions = PyList_New(0);
        if (positions == NULL) goto done;
        PyList_SET_ITEM(found, b, positions);
        uint8_t mask = (uint8_t)(1u << (bit & 7));
        for (Py_ssize_t i = 0; i < n; i++) {
            if (rows[id[i] * 32 + (bit >> 3)] & mask) {
                PyObject *at = PyLong_FromSsize_t(i);
                if (at == NULL || PyList_Append(positions, at) < 0) {
                    Py_XDECREF(at);
                    goto done;
                }
                Py_DECREF(at);
            }
        }
    }
    result = found;
    found = NULL;

done:
    Py_XDECREF(found);
    Py_XDECREF(bits);
    if (sketches.obj) PyBuffer_Release(&sketches);
    if (ids.obj) PyBuffer_Release(&ids);
    return result;
}

PyDoc_STRVAR(pair_sketches_doc,
             "pair_sketches(term_ids, lengths, skip, hashes, mix, sketches)\n\n"
             "Each passage's adjacent-pair sketch (index/engine/pair_sketches.py): passage i has the next lengths[i]\n"
             "of term_ids (int32), of which the first skip[i] (its title's) are left out; each two neighbouring ones\n"
             "(a, b) set bit ((hashes[a] << 32 | hashes[b]) * mix) >> 56 (mod 2**64) of its 32-byte row of sketches\n"
             "(uint8, written; bit k of a row is bit k % 8 of byte k / 8). hashes: uint64 below 2**32, one per term id;\n"
             "lengths, skip: int64.");

static PyObject *pair_sketches(PyObject *self, PyObject *args) {
    PyObject *ids_obj, *lengths_obj, *skip_obj, *hashes_obj, *sketches_obj;
    unsigned long long mix;
    if (!PyArg_ParseTuple(args, "OOOOKO", &ids_obj, &lengths_obj, &skip_obj, &hashes_obj, &mix, &sketches_obj))
        return NULL;
    Py_buffer ids = {0}, lengths = {0}, skip = {0}, hashes = {0}, sketches = {0};
    PyObject *result = NULL;
    if (get_buffer(ids_obj, &ids, 0, sizeof(int32_t), "term_ids") < 0) goto done;
    if (get_buffer(lengths_obj, &lengths, 0, sizeof(int64_t), "lengths") < 0) goto done;
    if (get_buffer(skip_obj, &skip, 0, sizeof(int64_t), "skip") < 0) goto done;
    if (get_buffer(hashes_obj, &hashes, 0, sizeof(uint64_t), "hashes") < 0) goto done;
    if (get_buffer(sketches_obj, &sketches, 1, 1, "sketches") < 0) goto done;
    Py_ssize_t n = lengths.len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t count = ids.len / (Py_ssize_t)sizeof(int32_t);
    Py_ssize_t vocabulary = hashes.len / (Py_ssize_t)sizeof(uint64_t);
    if (skip.len != lengths.len || sketches.len != n * 32) {
        PyErr_SetString(PyExc_ValueError, "lengths and skip need one item per passage, sketches 32 bytes per passage");
        goto done;
    }
    const int64_t *length = lengths.buf, *skipped = skip.buf;
    const int32_t *term = ids.buf;
    const uint64_t *hash = hashes.buf;
    Py_ssize_t total = terms_of_passages(length, skipped, n, count);
    if (total < 0) goto done;
    for (Py_ssize_t t = 0; t < total; t++) {
        if (term[t] < 0 || term[t] >= vocabulary || hash[term[t]] > UINT32_MAX) {
            PyErr_Format(PyExc_ValueError, "term id %d has no 32-bit hash (hashes holds %zd)", term[t], vocabulary);
            goto done;
        }
    }
    uint8_t *row = sketches.buf;
    memset(row, 0, (size_t)sketches.len);
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < n; i++, row += 32) {
        Py_ssize_t end = at + length[i];
        Py_ssize_t first = at + (skipped[i] < length[i] ? skipped[i] : length[i]);
        for (Py_ssize_t t = first + 1; t < end; t++) {
            uint64_t bit = ((hash[term[t - 1]] << 32 | hash[term[t]]) * (uint64_t)mix) >> 56;
            row[bit >> 3] |= (uint8_t)(1u << (bit & 7));
        }
        at = end;
    }
    result = Py_None;
    Py_INCREF(result);

done:
    if (ids.obj) PyBuffer_Release(&ids);
    if (lengths.obj) PyBuffer_Release(&lengths);
    if (skip.obj) PyBuffer_Release(&skip);
    if (hashes.obj) PyBuffer_Release(&hashes);
    if (sketches.obj) PyBuffer_Release(&sketches);
    return result;
}

static PyMethodDef methods[] = {
    {"top_positive", top_positive, METH_VARARGS, top_positive_doc},
    {"check_postings", check_postings, METH_VARARGS, check_postings_doc},
    {"near_pairs", near_pairs, METH_VARARGS, near_pairs_doc},
    {"article_scores", article_scores, METH_VARARGS, article_scores_doc},
    {"passage_sketches", passage_sketches, METH_VARARGS, passage_sketches_doc},
    {"pair_sketches", pair_sketches, METH_VARARGS, pair_sketches_doc},
    {"contains", contains, METH_VARARGS, contains_doc},
    {"with_pair_bit", with_pair_bit, METH_VARARGS, with_pair_bit_doc},
    {"article_scores_of", article_scores_of, METH_VARARGS, article_scores_of_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_bm25_kernel", "The compiled BM25 scoring loop of corpusbot.index.engine.bm25, and per-article sums of postings.", -1, methods,
};

PyMODINIT_FUNC PyInit__bm25_kernel(void) {
    if (PyType_Ready(&CheckedType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "BLOCK", BLOCK) < 0 || PyModule_AddObjectRef(m, "CheckedPostings", (PyObject *)&CheckedType) < 0)
        Py_CLEAR(m);
    return m;
}
