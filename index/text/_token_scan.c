/*
 * The per-token loop of Tokenizer.tokens_of (index/text/tokenizer.py), compiled.
 *
 * tokens_of reads a text by its whitespace-separated tokens, as Tokenizer.terms does: a token's terms come from
 * the tokenizer's token cache, and only the tokens with a wanted term have their words looked at. A passage has
 * about eighty tokens and a handful of hits, so in Python nearly all the time went to looking tokens up only to
 * find they hold no wanted term. tokens_of() here cuts the text exactly as str.split() does (whitespace is
 * Py_UNICODE_ISSPACE, the test of str.split and str.isspace), looks each token up in the token cache, tests its
 * terms against `wanted` with the `in` operator, and makes the tokens (Python's Token) of the wanted words of
 * the hits from the words cache. Tokens missing from a cache are handed back: Python computes them with the
 * word pattern (filling the caches) and merges them in.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Moves *at past whitespace and the token after it; returns the token's start, or -1 when only whitespace is
 * left. Called with a constant kind in the loops compiled per kind, where PyUnicode_READ's switch folds away. */
static inline __attribute__((always_inline)) Py_ssize_t next_token(int kind, const void *data, Py_ssize_t length,
                                                                   Py_ssize_t *at) {
    Py_ssize_t i = *at;
    while (i < length && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i))) i++;
    if (i == length) {
        *at = i;
        return -1;
    }
    Py_ssize_t start = i;
    while (i < length && !Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i))) i++;
    *at = i;
    return start;
}

/* 1 when one of `terms` (the cache's tuple for a token) is in `wanted`, 0 when none is, -1 on error. */
static int has_wanted(PyObject *terms, PyObject *wanted) {
    if (!PyTuple_Check(terms)) {
        PyErr_Format(PyExc_TypeError, "the token cache holds a %.100s, not a tuple of terms", Py_TYPE(terms)->tp_name);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(terms); i++) {
        int found = PySequence_Contains(wanted, PyTuple_GET_ITEM(terms, i));
        if (found != 0) return found;
    }
    return 0;
}

/* Appends make(term, at + start, at + end) to `found` for each (term, start, end) of `words` (the words cache's
 * tuple for the token at `at`, `length` long) whose term is in `wanted`. 0, or -1 on error. */
static int add_words(PyObject *found, PyObject *words, Py_ssize_t at, Py_ssize_t length, PyObject *wanted,
                     PyObject *make) {
    if (!PyTuple_Check(words)) {
        PyErr_Format(PyExc_TypeError, "the words cache holds a %.100s, not a tuple of words", Py_TYPE(words)->tp_name);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(words); i++) {
        PyObject *word = PyTuple_GET_ITEM(words, i);
        if (!PyTuple_Check(word) || PyTuple_GET_SIZE(word) != 3) {
            PyErr_SetString(PyExc_TypeError, "a word of the words cache is not a (term, start, end) tuple");
            return -1;
        }
        PyObject *term = PyTuple_GET_ITEM(word, 0);
        int keep = PySequence_Contains(wanted, term);
        if (keep <= 0) {
            if (keep < 0) return -1;
            continue;
        }
        Py_ssize_t start = PyLong_AsSsize_t(PyTuple_GET_ITEM(word, 1));
        if (start == -1 && PyErr_Occurred()) return -1;
        Py_ssize_t end = PyLong_AsSsize_t(PyTuple_GET_ITEM(word, 2));
        if (end == -1 && PyErr_Occurred()) return -1;
        if (start < 0 || end < start || end > length) {
            PyErr_SetString(PyExc_ValueError, "a word of the words cache is not inside its token");
            return -1;
        }
        PyObject *args[3] = {term, PyLong_FromSsize_t(at + start), PyLong_FromSsize_t(at + end)};
        PyObject *token = args[1] && args[2] ? PyObject_Vectorcall(make, args, 3, NULL) : NULL;
        Py_XDECREF(args[1]);
        Py_XDECREF(args[2]);
        if (token == NULL) return -1;
        int failed = PyList_Append(found, token);
        Py_DECREF(token);
        if (failed) return -1;
    }
    return 0;
}

/* Appends (start, token) to `into`; releases the caller's reference to `token` either way. */
static int append_token(PyObject *into, Py_ssize_t start, PyObject *token) {
    PyObject *at = PyLong_FromSsize_t(start);
    PyObject *entry = at == NULL ? NULL : PyTuple_Pack(2, at, token);
    Py_XDECREF(at);
    Py_DECREF(token);
    if (entry == NULL) return -1;
    int failed = PyList_Append(into, entry);
    Py_DECREF(entry);
    return failed;
}

/* The token's words when it has a wanted term and both caches hold it (a new reference), Py_None when it has
 * no wanted term (borrowed), NULL with `*missing` set when a cache does not hold it, NULL on error. */
static PyObject *wanted_words(PyObject *token, PyObject *token_terms, PyObject *token_words, PyObject *wanted,
                              int *missing) {
    PyObject *terms = PyDict_GetItemWithError(token_terms, token); /* borrowed */
    if (terms == NULL) {
        *missing = !PyErr_Occurred();
        return NULL;
    }
    /* `in` may run Python code (a container's __contains__, a term's __eq__) that changes the caches. */
    Py_INCREF(terms);
    int wanted_here = has_wanted(terms, wanted);
    Py_DECREF(terms);
    if (wanted_here <= 0) return wanted_here < 0 ? NULL : Py_None;
    PyObject *words = PyDict_GetItemWithError(token_words, token);
    if (words == NULL) {
        *missing = !PyErr_Occurred();
        return NULL;
    }
    Py_INCREF(words);
    return words;
}

/* Whether an ASCII token [start, end) of 1-byte text may hold a wanted term: one of its characters that can start
 * a word (a letter or digit after a character of another kind) has `starts` set. -1 when the token is not ASCII
 * (it is then looked up). */
static int may_start_wanted(const Py_UCS1 *chars, Py_ssize_t start, Py_ssize_t end, const unsigned char *starts) {
    int previous = 0, may = 0; /* 0: neither, 1: a letter, 2: a digit */
    for (Py_ssize_t i = start; i < end; i++) {
        Py_UCS1 c = chars[i];
        if (c >= 128) return -1;
        int kind = ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ? 1 : (c >= '0' && c <= '9') ? 2 : 0;
        may |= kind != 0 && kind != previous && starts[c];
        previous = kind;
    }
    return may;
}

PyDoc_STRVAR(tokens_of_doc,
             "tokens_of(text, token_terms, token_words, wanted, make, starts=None, /)\n--\n\n"
             "For each whitespace-separated token of text (str.split()'s) with a term in wanted (token_terms: token "
             "-> tuple of terms), make(term, start, end) for each of its words (token_words: token -> tuple of "
             "(term, start, end) in the token) whose term is in wanted, start and end in text. Returns the list of "
             "those, in text order, and the list of the tokens a cache does not hold, as (start, token) in text "
             "order. starts (128 bytes): an ASCII token none of whose possible word starts c has starts[c] set is "
             "left without a look-up (the caller knows such a token has no wanted term, whether cached or not).");

static PyObject *tokens_of(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 5 && nargs != 6) {
        PyErr_Format(PyExc_TypeError, "tokens_of() takes 5 or 6 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *text = args[0], *token_terms = args[1], *token_words = args[2], *wanted = args[3], *make = args[4];
    const unsigned char *starts = NULL;
    if (nargs == 6 && args[5] != Py_None) {
        if (!PyBytes_CheckExact(args[5]) || PyBytes_GET_SIZE(args[5]) != 128) {
            PyErr_SetString(PyExc_TypeError, "starts must be 128 bytes or None");
            return NULL;
        }
        starts = (const unsigned char *)PyBytes_AS_STRING(args[5]);
    }
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "text must be str, not %.100s", Py_TYPE(text)->tp_name);
        return NULL;
    }
    if (!PyDict_Check(token_terms) || !PyDict_Check(token_words)) {
        PyErr_SetString(PyExc_TypeError, "the token caches must be dicts");
        return NULL;
    }
    const int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    const Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    PyObject *found = PyList_New(0), *missing = PyList_New(0), *result = NULL;
    if (found == NULL || missing == NULL) goto done;
    for (Py_ssize_t at = 0;;) {
        Py_ssize_t start;
        switch (kind) {
            case PyUnicode_1BYTE_KIND: start = next_token(PyUnicode_1BYTE_KIND, data, length, &at); break;
            case PyUnicode_2BYTE_KIND: start = next_token(PyUnicode_2BYTE_KIND, data, length, &at); break;
            default: start = next_token(PyUnicode_4BYTE_KIND, data, length, &at); break;
        }
        if (start < 0) break;
        if (starts != NULL && kind == PyUnicode_1BYTE_KIND && may_start_wanted(data, start, at, starts) == 0) continue;
        PyObject *token = PyUnicode_Substring(text, start, at);
        if (token == NULL) goto done;
        int is_missing = 0;
        PyObject *words = wanted_words(token, token_terms, token_words, wanted, &is_missing);
        if (words == NULL) {
            if (!is_missing) {
                Py_DECREF(token);
                goto done;
            }
            if (append_token(missing, start, token) < 0) goto done;
            continue;
        }
        Py_DECREF(token);
        if (words == Py_None) continue;
        int failed = add_words(found, words, start, at - start, wanted, make);
        Py_DECREF(words);
        if (failed) goto done;
    }
    result = PyTuple_Pack(2, found, missing);
done:
    Py_XDECREF(found);
    Py_XDECREF(missing);
    return result;
}

static PyMethodDef methods[] = {
    {"tokens_of", (PyCFunction)(void (*)(void))tokens_of, METH_FASTCALL, tokens_of_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_token_scan", "The compiled per-token loop of corpusbot.index.text.tokenizer.tokens_of.",
    -1, methods,
};

PyMODINIT_FUNC PyInit__token_scan(void) { return PyModule_Create(&module); }
