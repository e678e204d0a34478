/* The compiled fast path of ObjectSanitizer: one pass that checks, cleans and pickles.
 *
 * Encoder.encode(obj, on_other) walks a value whose containers and scalars are of exact
 * built-in clean types and writes their protocol-5 pickle as it goes. Every other object
 * (a live handle, a model, a dataclass, an enum, an unknown object...) is handed to
 * on_other(obj, segments, ancestors, depth, nodes, nbytes, box), the Python walk, which returns
 * (clean, nodes, nbytes); the clean value takes the object's place, in the pickle and in a
 * copy of each container on the way to it (containers without replacements are kept as
 * they are). The result is (clean, pickle) or None when the pass gives the value back to
 * the full walk: a budget would be exceeded, a secret would be redacted, a structure is
 * too deep for this pass or changed under it, or a foreign object sits below max_depth.
 *
 * No method of a foreign object is ever called here: types are compared by identity, and
 * only members of exact standard types are read (datetime fields, UUID.int, ZoneInfo.key,
 * timezone.__getinitargs__, Decimal.__str__).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <string.h>

#define HARD_DEPTH 500
#define MAX_TZ_MEMO 16
#define KEY_SLOTS 512 /* open-addressing table of memoized dict keys (power of two) */
#define MAX_KEYS 256

/* the order of FAST_INSTANCE_TYPES in _fast.py, which the Python side passes in */
enum { C_ZONEINFO, C_DATETIME, C_DATE, C_TIME, C_TIMEDELTA, C_TIMEZONE, C_UUID, C_DECIMAL, N_CLS };

/* pickle opcodes (protocol 2-5) */
#define OP_MARK '('
#define OP_STOP '.'
#define OP_NONE 'N'
#define OP_NEWTRUE '\x88'
#define OP_NEWFALSE '\x89'
#define OP_BININT 'J'
#define OP_BININT1 'K'
#define OP_BININT2 'M'
#define OP_LONG1 '\x8a'
#define OP_LONG4 '\x8b'
#define OP_BINFLOAT 'G'
#define OP_SHORT_BINUNICODE '\x8c'
#define OP_BINUNICODE 'X'
#define OP_BINUNICODE8 '\x8d'
#define OP_SHORT_BINBYTES 'C'
#define OP_BINBYTES 'B'
#define OP_BINBYTES8 '\x8e'
#define OP_EMPTY_DICT '}'
#define OP_EMPTY_LIST ']'
#define OP_EMPTY_TUPLE ')'
#define OP_SETITEMS 'u'
#define OP_APPENDS 'e'
#define OP_TUPLE 't'
#define OP_TUPLE1 '\x85'
#define OP_TUPLE2 '\x86'
#define OP_TUPLE3 '\x87'
#define OP_EMPTY_SET '\x8f'
#define OP_ADDITEMS '\x90'
#define OP_FROZENSET '\x91'
#define OP_STACK_GLOBAL '\x93'
#define OP_MEMOIZE '\x94'
#define OP_BINGET 'h'
#define OP_LONG_BINGET 'j'
#define OP_REDUCE 'R'
#define OP_FRAME '\x95'

typedef struct {
    PyObject_HEAD
    Py_ssize_t max_depth, max_items, max_str_len, max_bytes_len, max_nodes, max_total_bytes;
    int redact_urls;
    unsigned allowed;          /* bit i: class i may be encoded here */
    PyObject *cls[N_CLS];      /* the classes */
    PyObject *names[N_CLS];    /* (module, qualname) for each */
    PyObject *secret_cache;    /* dict str -> bool, filled by is_secret */
    PyObject *is_secret;       /* key -> bool */
    PyObject *numeric_only;    /* value -> bool */
    PyObject *url_redact;      /* str -> str | None */
} Encoder;

typedef struct {
    Encoder *enc;
    PyObject *on_other;
    PyObject *box; /* a list made at the first call of on_other, for its per-pass state */
    char *buf;
    Py_ssize_t len, cap;
    Py_ssize_t nodes, nbytes;
    Py_ssize_t memo_next;
    Py_ssize_t cls_memo[N_CLS];
    PyObject *tz_obj[MAX_TZ_MEMO];
    Py_ssize_t tz_idx[MAX_TZ_MEMO];
    int ntz;
    /* dict keys written once then memo'd: held (a reference each) until the pass ends */
    PyObject *key_obj[KEY_SLOTS];
    Py_ssize_t key_idx[KEY_SLOTS];
    int nkeys;
    int bail;       /* give the value back to the full walk (no exception set) */
    int counting;   /* 0 while writing a replacement the walk has already counted */
    /* the path: ancestors[d] is the container at depth d; seg_key[d] (or, when NULL,
     * seg_idx[d]) the step from it to its child */
    PyObject *anc[HARD_DEPTH + 1];
    PyObject *seg_key[HARD_DEPTH + 1];
    Py_ssize_t seg_idx[HARD_DEPTH + 1];
    PyObject *copy[HARD_DEPTH + 1]; /* the clean copy of anc[d], once it needs one */
} State;

/* ---- output buffer ------------------------------------------------------------------ */

static int grow(State *st, Py_ssize_t need) {
    Py_ssize_t cap = st->cap ? st->cap : 4096;
    while (cap - st->len < need) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    char *nb = PyMem_Realloc(st->buf, (size_t)cap);
    if (nb == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    st->buf = nb;
    st->cap = cap;
    return 0;
}

#define RESERVE(st, n) (((st)->cap - (st)->len >= (n)) ? 0 : grow((st), (n)))

static inline int put1(State *st, char c) {
    if (RESERVE(st, 1) < 0) return -1;
    st->buf[st->len++] = c;
    return 0;
}

static inline int put(State *st, const char *data, Py_ssize_t n) {
    if (RESERVE(st, n) < 0) return -1;
    memcpy(st->buf + st->len, data, (size_t)n);
    st->len += n;
    return 0;
}

static inline void le32(char *p, uint32_t v) {
    p[0] = (char)(v & 0xff);
    p[1] = (char)((v >> 8) & 0xff);
    p[2] = (char)((v >> 16) & 0xff);
    p[3] = (char)((v >> 24) & 0xff);
}

static inline void le64(char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (char)((v >> (8 * i)) & 0xff);
}

/* a length-prefixed blob: short (1-byte length), 4-byte or 8-byte length opcode */
static int put_sized(State *st, char op1, char op4, char op8, const char *data, Py_ssize_t n) {
    if (RESERVE(st, n + 9) < 0) return -1;
    char *p = st->buf + st->len;
    if (n < 256) {
        p[0] = op1;
        p[1] = (char)n;
        p += 2;
    } else if ((uint64_t)n <= 0xffffffffULL) {
        p[0] = op4;
        le32(p + 1, (uint32_t)n);
        p += 5;
    } else {
        p[0] = op8;
        le64(p + 1, (uint64_t)n);
        p += 9;
    }
    memcpy(p, data, (size_t)n);
    st->len = (p - st->buf) + n;
    return 0;
}

static int put_memo_get(State *st, Py_ssize_t idx) {
    char b[5];
    if (idx < 256) {
        b[0] = OP_BINGET;
        b[1] = (char)idx;
        return put(st, b, 2);
    }
    b[0] = OP_LONG_BINGET;
    le32(b + 1, (uint32_t)idx);
    return put(st, b, 5);
}

/* ---- scalars ------------------------------------------------------------------------ */

static int put_str_raw(State *st, PyObject *s) {
    Py_ssize_t n;
    const char *data;
    if (PyUnicode_IS_COMPACT_ASCII(s)) {
        data = (const char *)PyUnicode_DATA(s);
        n = PyUnicode_GET_LENGTH(s);
    } else {
        data = PyUnicode_AsUTF8AndSize(s, &n);
        if (data == NULL) { /* lone surrogates: the full walk and pickle handle them */
            PyErr_Clear();
            st->bail = 1;
            return -1;
        }
    }
    return put_sized(st, OP_SHORT_BINUNICODE, OP_BINUNICODE, OP_BINUNICODE8, data, n);
}

static PyObject *SCHEME_SEP; /* "://" */

static int has_scheme_sep(PyObject *s) {
    if (PyUnicode_IS_COMPACT_ASCII(s)) {
        const char *p = (const char *)PyUnicode_DATA(s);
        Py_ssize_t n = PyUnicode_GET_LENGTH(s);
        const char *end = p + n;
        while (n >= 3) {
            const char *c = memchr(p, ':', (size_t)(end - p));
            if (c == NULL || end - c < 3) return 0;
            if (c[1] == '/' && c[2] == '/') return 1;
            p = c + 1;
            n = end - p;
        }
        return 0;
    }
    Py_ssize_t at = PyUnicode_Find(s, SCHEME_SEP, 0, PY_SSIZE_T_MAX, 1);
    return at >= 0 ? 1 : (at == -2 ? -1 : 0);
}

/* a string value or key: budgets, URL credentials, then its pickle */
static int put_str(State *st, PyObject *s) {
    Encoder *e = st->enc;
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (n > e->max_str_len) {
        st->bail = 1;
        return -1;
    }
    if (e->redact_urls) {
        int sep = has_scheme_sep(s);
        if (sep < 0) return -1;
        if (sep) {
            PyObject *r = PyObject_CallOneArg(e->url_redact, s);
            if (r == NULL) return -1;
            int changed = r != Py_None;
            Py_DECREF(r);
            if (changed) {
                st->bail = 1;
                return -1;
            }
        }
    }
    if (st->counting) {
        st->nodes++;
        st->nbytes += n;
    }
    return put_str_raw(st, s);
}

static int put_long(State *st, PyObject *o) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    char b[10];
    if (!overflow) {
        if (v >= 0 && v < 256) {
            b[0] = OP_BININT1;
            b[1] = (char)v;
            return put(st, b, 2);
        }
        if (v >= 0 && v < 65536) {
            b[0] = OP_BININT2;
            b[1] = (char)(v & 0xff);
            b[2] = (char)(v >> 8);
            return put(st, b, 3);
        }
        if (v >= INT32_MIN && v <= INT32_MAX) {
            b[0] = OP_BININT;
            le32(b + 1, (uint32_t)(int32_t)v);
            return put(st, b, 5);
        }
        b[0] = OP_LONG1;
        b[1] = 8;
        le64(b + 2, (uint64_t)v);
        return put(st, b, 10);
    }
    int64_t nbits = (int64_t)_PyLong_NumBits(o);
    if (nbits < 0 || nbits > ((int64_t)1 << 34)) {
        PyErr_Clear();
        st->bail = 1;
        return -1;
    }
    Py_ssize_t nbytes = (Py_ssize_t)(nbits >> 3) + 1;
    if (RESERVE(st, nbytes + 5) < 0) return -1;
    char *p = st->buf + st->len;
    if (nbytes < 256) {
        p[0] = OP_LONG1;
        p[1] = (char)nbytes;
        p += 2;
    } else {
        p[0] = OP_LONG4;
        le32(p + 1, (uint32_t)nbytes);
        p += 5;
    }
#if PY_VERSION_HEX >= 0x030D0000
    if (_PyLong_AsByteArray((PyLongObject *)o, (unsigned char *)p, (size_t)nbytes, 1, 1, 1) < 0)
        return -1;
#else
    if (_PyLong_AsByteArray((PyLongObject *)o, (unsigned char *)p, (size_t)nbytes, 1, 1) < 0)
        return -1;
#endif
    st->len = (p - st->buf) + nbytes;
    return 0;
}

static int put_float(State *st, PyObject *o) {
    char b[9];
    b[0] = OP_BINFLOAT;
    if (PyFloat_Pack8(PyFloat_AS_DOUBLE(o), b + 1, 0) < 0) return -1;
    return put(st, b, 9);
}

/* None, bool, int, float, str or bytes: 1 written, 0 not a scalar, -1 failed or bail */
static int put_scalar(State *st, PyObject *o) {
    PyTypeObject *t = Py_TYPE(o);
    if (o == Py_None) {
        if (st->counting) st->nodes++;
        return put1(st, OP_NONE) < 0 ? -1 : 1;
    }
    if (t == &PyUnicode_Type) return put_str(st, o) < 0 ? -1 : 1;
    if (t == &PyLong_Type) {
        if (st->counting) st->nodes++;
        return put_long(st, o) < 0 ? -1 : 1;
    }
    if (t == &PyFloat_Type) {
        if (st->counting) st->nodes++;
        return put_float(st, o) < 0 ? -1 : 1;
    }
    if (t == &PyBool_Type) {
        if (st->counting) st->nodes++;
        return put1(st, o == Py_True ? OP_NEWTRUE : OP_NEWFALSE) < 0 ? -1 : 1;
    }
    if (t == &PyBytes_Type) {
        Py_ssize_t n = PyBytes_GET_SIZE(o);
        if (n > st->enc->max_bytes_len) {
            st->bail = 1;
            return -1;
        }
        if (st->counting) {
            st->nodes++;
            st->nbytes += n;
        }
        return put_sized(st, OP_SHORT_BINBYTES, OP_BINBYTES, OP_BINBYTES8, PyBytes_AS_STRING(o),
                         n) < 0
                   ? -1
                   : 1;
    }
    return 0;
}

/* ---- classes and time values ---------------------------------------------------------- */

static int put_class(State *st, int c) {
    if (st->cls_memo[c] >= 0) return put_memo_get(st, st->cls_memo[c]);
    PyObject *names = st->enc->names[c];
    if (put_str_raw(st, PyTuple_GET_ITEM(names, 0)) < 0) return -1;
    if (put_str_raw(st, PyTuple_GET_ITEM(names, 1)) < 0) return -1;
    char b[2] = {OP_STACK_GLOBAL, OP_MEMOIZE};
    if (put(st, b, 2) < 0) return -1;
    st->cls_memo[c] = st->memo_next++;
    return 0;
}

static int put_reduce_bytes(State *st, int c, const unsigned char *state, Py_ssize_t n,
                            PyObject *tz);

/* a tzinfo of a clean type (None, timezone, ZoneInfo with a str key): 1 ok, 0 not clean */
static int tz_kind(Encoder *e, PyObject *tz) {
    if (tz == Py_None) return 1;
    PyTypeObject *t = Py_TYPE(tz);
    if ((PyObject *)t == e->cls[C_TIMEZONE]) return (e->allowed >> C_TIMEZONE) & 1;
    if ((PyObject *)t == e->cls[C_ZONEINFO] && ((e->allowed >> C_ZONEINFO) & 1)) {
        PyObject *key = PyObject_GetAttrString(tz, "key");
        if (key == NULL) {
            PyErr_Clear();
            return 0;
        }
        int ok = PyUnicode_CheckExact(key);
        Py_DECREF(key);
        return ok;
    }
    return 0;
}

static int put_delta(State *st, PyObject *o);

/* a timezone or ZoneInfo (already checked clean), written once per pass then memo'd */
static int put_tz(State *st, PyObject *tz) {
    for (int i = 0; i < st->ntz; i++)
        if (st->tz_obj[i] == tz) return put_memo_get(st, st->tz_idx[i]);
    Encoder *e = st->enc;
    if ((PyObject *)Py_TYPE(tz) == e->cls[C_TIMEZONE]) {
        PyObject *args = PyObject_CallMethod(tz, "__getinitargs__", NULL);
        if (args == NULL) return -1;
        Py_ssize_t n = PyTuple_Check(args) ? PyTuple_GET_SIZE(args) : 0;
        int rc = -1;
        if (n < 1 || n > 2 || !PyDelta_CheckExact(PyTuple_GET_ITEM(args, 0)) ||
            (n == 2 && !PyUnicode_CheckExact(PyTuple_GET_ITEM(args, 1)))) {
            st->bail = 1;
        } else if (put_class(st, C_TIMEZONE) == 0 &&
                   put_delta(st, PyTuple_GET_ITEM(args, 0)) == 0 &&
                   (n == 1 || put_str_raw(st, PyTuple_GET_ITEM(args, 1)) == 0)) {
            char b[2] = {n == 1 ? OP_TUPLE1 : OP_TUPLE2, OP_REDUCE};
            rc = put(st, b, 2);
        }
        Py_DECREF(args);
        if (rc < 0) return -1;
    } else {
        PyObject *key = PyObject_GetAttrString(tz, "key");
        if (key == NULL) return -1;
        int rc = -1;
        if (!PyUnicode_CheckExact(key)) {
            st->bail = 1;
        } else if (put_class(st, C_ZONEINFO) == 0 && put_str_raw(st, key) == 0) {
            char b[2] = {OP_TUPLE1, OP_REDUCE};
            rc = put(st, b, 2);
        }
        Py_DECREF(key);
        if (rc < 0) return -1;
    }
    if (put1(st, OP_MEMOIZE) < 0) return -1;
    if (st->ntz < MAX_TZ_MEMO) {
        st->tz_obj[st->ntz] = Py_NewRef(tz); /* held: its address must stay its own */
        st->tz_idx[st->ntz] = st->memo_next;
        st->ntz++;
    }
    st->memo_next++;
    return 0;
}

static int put_reduce_bytes(State *st, int c, const unsigned char *state, Py_ssize_t n,
                            PyObject *tz) {
    if (put_class(st, c) < 0) return -1;
    if (put_sized(st, OP_SHORT_BINBYTES, OP_BINBYTES, OP_BINBYTES8, (const char *)state, n) < 0)
        return -1;
    if (tz != Py_None) {
        if (put_tz(st, tz) < 0) return -1;
        char b[2] = {OP_TUPLE2, OP_REDUCE};
        return put(st, b, 2);
    }
    char b[2] = {OP_TUPLE1, OP_REDUCE};
    return put(st, b, 2);
}

static int put_delta(State *st, PyObject *o) {
    if (put_class(st, C_TIMEDELTA) < 0) return -1;
    PyObject *parts[3];
    parts[0] = PyLong_FromLong(PyDateTime_DELTA_GET_DAYS(o));
    parts[1] = PyLong_FromLong(PyDateTime_DELTA_GET_SECONDS(o));
    parts[2] = PyLong_FromLong(PyDateTime_DELTA_GET_MICROSECONDS(o));
    int rc = 0;
    for (int i = 0; i < 3; i++) {
        if (parts[i] == NULL || (rc == 0 && put_long(st, parts[i]) < 0)) rc = -1;
    }
    for (int i = 0; i < 3; i++) Py_XDECREF(parts[i]);
    if (rc < 0) return -1;
    char b[2] = {OP_TUPLE3, OP_REDUCE};
    return put(st, b, 2);
}

/* datetime, date, time, timedelta, timezone, ZoneInfo, UUID, Decimal: 1 written, 0 foreign */
static int put_instance(State *st, PyObject *o) {
    Encoder *e = st->enc;
    PyObject *t = (PyObject *)Py_TYPE(o);
    unsigned ok = e->allowed;
    if (t == e->cls[C_DATETIME] && ((ok >> C_DATETIME) & 1)) {
        PyObject *tz = PyDateTime_DATE_GET_TZINFO(o);
        if (!tz_kind(e, tz)) return 0;
        int y = PyDateTime_GET_YEAR(o), us = PyDateTime_DATE_GET_MICROSECOND(o);
        unsigned char s[10] = {
            (unsigned char)(y >> 8),
            (unsigned char)(y & 0xff),
            (unsigned char)(PyDateTime_GET_MONTH(o) | (PyDateTime_DATE_GET_FOLD(o) ? 128 : 0)),
            (unsigned char)PyDateTime_GET_DAY(o),
            (unsigned char)PyDateTime_DATE_GET_HOUR(o),
            (unsigned char)PyDateTime_DATE_GET_MINUTE(o),
            (unsigned char)PyDateTime_DATE_GET_SECOND(o),
            (unsigned char)(us >> 16),
            (unsigned char)((us >> 8) & 0xff),
            (unsigned char)(us & 0xff),
        };
        return put_reduce_bytes(st, C_DATETIME, s, 10, tz) < 0 ? -1 : 1;
    }
    if (t == e->cls[C_UUID] && ((ok >> C_UUID) & 1)) {
        PyObject *i = PyObject_GetAttrString(o, "int");
        if (i == NULL) return -1;
        int rc = -1;
        if (!PyLong_CheckExact(i)) {
            st->bail = 1;
        } else if (put_class(st, C_UUID) == 0 && put(st, "(NNNN", 5) == 0 && put_long(st, i) == 0) {
            char b[2] = {OP_TUPLE, OP_REDUCE};
            rc = put(st, b, 2);
        }
        Py_DECREF(i);
        return rc < 0 ? -1 : 1;
    }
    if (t == e->cls[C_DATE] && ((ok >> C_DATE) & 1)) {
        int y = PyDateTime_GET_YEAR(o);
        unsigned char s[4] = {(unsigned char)(y >> 8), (unsigned char)(y & 0xff),
                              (unsigned char)PyDateTime_GET_MONTH(o),
                              (unsigned char)PyDateTime_GET_DAY(o)};
        return put_reduce_bytes(st, C_DATE, s, 4, Py_None) < 0 ? -1 : 1;
    }
    if (t == e->cls[C_TIME] && ((ok >> C_TIME) & 1)) {
        PyObject *tz = PyDateTime_TIME_GET_TZINFO(o);
        if (!tz_kind(e, tz)) return 0;
        int us = PyDateTime_TIME_GET_MICROSECOND(o);
        unsigned char s[6] = {
            (unsigned char)(PyDateTime_TIME_GET_HOUR(o) | (PyDateTime_TIME_GET_FOLD(o) ? 128 : 0)),
            (unsigned char)PyDateTime_TIME_GET_MINUTE(o),
            (unsigned char)PyDateTime_TIME_GET_SECOND(o),
            (unsigned char)(us >> 16),
            (unsigned char)((us >> 8) & 0xff),
            (unsigned char)(us & 0xff),
        };
        return put_reduce_bytes(st, C_TIME, s, 6, tz) < 0 ? -1 : 1;
    }
    if (t == e->cls[C_TIMEDELTA] && ((ok >> C_TIMEDELTA) & 1))
        return put_delta(st, o) < 0 ? -1 : 1;
    if (t == e->cls[C_DECIMAL] && ((ok >> C_DECIMAL) & 1)) {
        PyObject *s = PyObject_Str(o);
        if (s == NULL) return -1;
        int rc = -1;
        if (PyUnicode_CheckExact(s) && put_class(st, C_DECIMAL) == 0 && put_str_raw(st, s) == 0) {
            char b[2] = {OP_TUPLE1, OP_REDUCE};
            rc = put(st, b, 2);
        }
        Py_DECREF(s);
        return rc < 0 ? -1 : 1;
    }
    if ((t == e->cls[C_TIMEZONE] || t == e->cls[C_ZONEINFO]) && tz_kind(e, o))
        return put_tz(st, o) < 0 ? -1 : 1;
    return 0;
}

/* ---- the walk ---------------------------------------------------------------------------- */

static PyObject *enc_value(State *st, PyObject *o, int depth);
static int take_snapshots(State *st, int depth);

static PyObject *call_other(State *st, PyObject *o, int depth) {
    Encoder *e = st->enc;
    if (st->on_other == NULL || !st->counting || depth > e->max_depth) {
        st->bail = 1;
        return NULL;
    }
    if (take_snapshots(st, depth) < 0) return NULL;
    PyObject *segs = PyTuple_New(depth), *anc = PyTuple_New(depth);
    if (segs == NULL || anc == NULL) {
        Py_XDECREF(segs);
        Py_XDECREF(anc);
        return NULL;
    }
    for (int d = 0; d < depth; d++) {
        PyObject *seg = st->seg_key[d];
        if (seg != NULL) {
            Py_INCREF(seg);
        } else {
            seg = PyLong_FromSsize_t(st->seg_idx[d]);
            if (seg == NULL) {
                Py_DECREF(segs);
                Py_DECREF(anc);
                return NULL;
            }
        }
        PyTuple_SET_ITEM(segs, d, seg);
        Py_INCREF(st->anc[d]);
        PyTuple_SET_ITEM(anc, d, st->anc[d]);
    }
    if (st->box == NULL && (st->box = PyList_New(0)) == NULL) {
        Py_DECREF(segs);
        Py_DECREF(anc);
        return NULL;
    }
    PyObject *r = PyObject_CallFunction(st->on_other, "ONNinnO", o, segs, anc, depth, st->nodes,
                                        st->nbytes, st->box);
    if (r == NULL) return NULL;
    if (!PyTuple_CheckExact(r) || PyTuple_GET_SIZE(r) != 3) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_TypeError, "on_other must return (clean, nodes, nbytes)");
        return NULL;
    }
    Py_ssize_t nodes = PyLong_AsSsize_t(PyTuple_GET_ITEM(r, 1));
    Py_ssize_t nbytes = PyLong_AsSsize_t(PyTuple_GET_ITEM(r, 2));
    if ((nodes == -1 || nbytes == -1) && PyErr_Occurred()) {
        Py_DECREF(r);
        return NULL;
    }
    PyObject *clean = PyTuple_GET_ITEM(r, 0);
    Py_INCREF(clean);
    Py_DECREF(r);
    st->nodes = nodes;
    st->nbytes = nbytes;
    /* the replacement is the walk's clean output, already counted: write it only */
    st->counting = 0;
    PyObject *again = enc_value(st, clean, depth);
    st->counting = 1;
    if (again == NULL) {
        Py_DECREF(clean);
        return NULL;
    }
    Py_DECREF(again);
    return clean;
}

static int over_budget(State *st) {
    Encoder *e = st->enc;
    if (st->nodes > e->max_nodes || st->nbytes > e->max_total_bytes) {
        st->bail = 1;
        return 1;
    }
    return 0;
}

/* a dict key: exact str (checked like a value), int, float, bool or None */
static int put_key(State *st, PyObject *k) {
    PyTypeObject *t = Py_TYPE(k);
    if (t == &PyUnicode_Type) {
        size_t slot = ((size_t)k >> 4) & (KEY_SLOTS - 1);
        while (st->key_obj[slot] != NULL) {
            if (st->key_obj[slot] == k) return put_memo_get(st, st->key_idx[slot]);
            slot = (slot + 1) & (KEY_SLOTS - 1);
        }
        int saved = st->counting;
        st->counting = 0; /* the walk does not count keys */
        int rc = put_str(st, k);
        st->counting = saved;
        if (rc < 0) return -1;
        if (st->nkeys < MAX_KEYS && PyUnicode_GET_LENGTH(k) > 1) {
            if (put1(st, OP_MEMOIZE) < 0) return -1;
            st->key_obj[slot] = Py_NewRef(k);
            st->key_idx[slot] = st->memo_next++;
            st->nkeys++;
        }
        return 0;
    }
    if (k == Py_None || t == &PyLong_Type || t == &PyFloat_Type || t == &PyBool_Type) {
        int saved = st->counting;
        st->counting = 0;
        int rc = put_scalar(st, k);
        st->counting = saved;
        return rc < 0 ? -1 : 0;
    }
    st->bail = 1;
    return -1;
}

/* would the walk redact the value under this key? */
static int secret_hit(State *st, PyObject *k, PyObject *v) {
    Encoder *e = st->enc;
    if (!PyUnicode_CheckExact(k)) return 0;
    PyObject *hit = PyDict_GetItemWithError(e->secret_cache, k);
    int secret;
    if (hit != NULL) {
        secret = PyObject_IsTrue(hit);
    } else {
        if (PyErr_Occurred()) return -1;
        PyObject *r = PyObject_CallOneArg(e->is_secret, k);
        if (r == NULL) return -1;
        secret = PyObject_IsTrue(r);
        Py_DECREF(r);
    }
    if (secret <= 0) return secret;
    PyTypeObject *tv = Py_TYPE(v);
    if (v == Py_None || tv == &PyLong_Type || tv == &PyFloat_Type || tv == &PyBool_Type) return 0;
    PyObject *r = PyObject_CallOneArg(e->numeric_only, v);
    if (r == NULL) return -1;
    int numeric = PyObject_IsTrue(r);
    Py_DECREF(r);
    return numeric < 0 ? -1 : !numeric;
}

/* Copies of dicts and lists on the way to a replaced object are taken just before the walk
 * is called (take_snapshots), while they still hold exactly what this pass has read; from
 * then on every item the pass reads is written into the copy. Whatever Python code then
 * does to the originals (a registered handler mutating the value), the copy and the pickle
 * hold the same, checked items. */
static int take_snapshots(State *st, int depth) {
    for (int d = 0; d < depth; d++) {
        if (st->copy[d] != NULL) continue;
        PyObject *a = st->anc[d];
        if (PyDict_CheckExact(a))
            st->copy[d] = PyDict_Copy(a);
        else if (PyList_CheckExact(a))
            st->copy[d] = PyList_GetSlice(a, 0, PyList_GET_SIZE(a));
        else
            continue; /* tuples cannot change: copied when an item does */
        if (st->copy[d] == NULL) return -1;
    }
    return 0;
}

static PyObject *finish_container(State *st, PyObject *c, int depth, char op) {
    PyObject *copy = st->copy[depth];
    st->copy[depth] = NULL;
    if (put1(st, op) < 0) {
        Py_XDECREF(copy);
        return NULL;
    }
    return copy != NULL ? copy : Py_NewRef(c);
}

static PyObject *fail_container(State *st, int depth) {
    Py_CLEAR(st->copy[depth]);
    return NULL;
}

static PyObject *enc_dict(State *st, PyObject *d, int depth) {
    Encoder *e = st->enc;
    Py_ssize_t n = PyDict_GET_SIZE(d);
    if (n > e->max_items) {
        st->bail = 1;
        return NULL;
    }
    if (put1(st, OP_EMPTY_DICT) < 0) return NULL;
    if (n == 0) return Py_NewRef(d);
    if (put1(st, OP_MARK) < 0) return NULL;
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    st->anc[depth] = d;
    st->copy[depth] = NULL;
    while (PyDict_Next(d, &pos, &k, &v)) {
        Py_INCREF(k);
        Py_INCREF(v);
        int bad = put_key(st, k) < 0;
        if (!bad) {
            int hit = secret_hit(st, k, v);
            if (hit != 0) {
                bad = 1;
                if (hit > 0) st->bail = 1;
            }
        }
        PyObject *cv = NULL;
        if (!bad) {
            st->seg_key[depth] = k;
            cv = enc_value(st, v, depth + 1);
        }
        if (cv != NULL && PyDict_GET_SIZE(d) != n) { /* changed by a handler */
            Py_CLEAR(cv);
            st->bail = 1;
        }
        if (cv != NULL && (cv != v || st->copy[depth] != NULL)) {
            if (st->copy[depth] == NULL) st->copy[depth] = PyDict_Copy(d);
            if (st->copy[depth] == NULL || PyDict_SetItem(st->copy[depth], k, cv) < 0)
                Py_CLEAR(cv);
        }
        Py_DECREF(k);
        Py_DECREF(v);
        if (cv == NULL) return fail_container(st, depth);
        Py_DECREF(cv);
    }
    return finish_container(st, d, depth, OP_SETITEMS);
}

static PyObject *enc_seq(State *st, PyObject *s, int depth, int is_list) {
    Encoder *e = st->enc;
    Py_ssize_t n = is_list ? PyList_GET_SIZE(s) : PyTuple_GET_SIZE(s);
    if (n > e->max_items) {
        st->bail = 1;
        return NULL;
    }
    if (is_list) {
        if (put1(st, OP_EMPTY_LIST) < 0) return NULL;
        if (n == 0) return Py_NewRef(s);
        if (put1(st, OP_MARK) < 0) return NULL;
    } else if (n == 0) {
        return put1(st, OP_EMPTY_TUPLE) < 0 ? NULL : Py_NewRef(s);
    } else if (n > 3 && put1(st, OP_MARK) < 0) {
        return NULL;
    }
    st->anc[depth] = s;
    st->copy[depth] = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (is_list && PyList_GET_SIZE(s) != n) { /* changed by a handler */
            st->bail = 1;
            return fail_container(st, depth);
        }
        PyObject *v = is_list ? PyList_GET_ITEM(s, i) : PyTuple_GET_ITEM(s, i);
        Py_INCREF(v);
        st->seg_key[depth] = NULL;
        st->seg_idx[depth] = i;
        PyObject *cv = enc_value(st, v, depth + 1);
        Py_DECREF(v);
        if (cv == NULL) return fail_container(st, depth);
        PyObject *copy = st->copy[depth];
        if (copy == NULL && cv != v) {
            copy = st->copy[depth] = is_list ? PyList_GetSlice(s, 0, n) : PyTuple_New(n);
            if (copy == NULL) {
                Py_DECREF(cv);
                return NULL;
            }
            if (!is_list)
                for (Py_ssize_t j = 0; j < i; j++)
                    PyTuple_SET_ITEM(copy, j, Py_NewRef(PyTuple_GET_ITEM(s, j)));
        }
        if (copy == NULL) {
            Py_DECREF(cv);
        } else if (is_list) {
            if (i >= PyList_GET_SIZE(copy)) { /* a snapshot of a list that had shrunk */
                Py_DECREF(cv);
                st->bail = 1;
                return fail_container(st, depth);
            }
            PyList_SetItem(copy, i, cv); /* steals cv */
        } else {
            PyTuple_SET_ITEM(copy, i, cv);
        }
    }
    char op = is_list ? OP_APPENDS
                      : (n == 1 ? OP_TUPLE1 : n == 2 ? OP_TUPLE2 : n == 3 ? OP_TUPLE3 : OP_TUPLE);
    return finish_container(st, s, depth, op);
}

static PyObject *enc_set(State *st, PyObject *s, int frozen) {
    Encoder *e = st->enc;
    Py_ssize_t n = PySet_GET_SIZE(s);
    if (n > e->max_items) {
        st->bail = 1;
        return NULL;
    }
    if (!frozen && put1(st, OP_EMPTY_SET) < 0) return NULL;
    if (frozen || n > 0) {
        if (put1(st, OP_MARK) < 0) return NULL;
    }
    PyObject *it = PyObject_GetIter(s), *k; /* an exact set's iterator runs no user code */
    if (it == NULL) return NULL;
    while ((k = PyIter_Next(it)) != NULL) {
        int rc = put_scalar(st, k);
        Py_DECREF(k);
        if (rc <= 0 || over_budget(st)) {
            if (rc == 0) st->bail = 1;
            Py_DECREF(it);
            return NULL;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) return NULL;
    if (frozen) return put1(st, OP_FROZENSET) < 0 ? NULL : Py_NewRef(s);
    if (n > 0 && put1(st, OP_ADDITEMS) < 0) return NULL;
    return Py_NewRef(s);
}

static PyObject *enc_value(State *st, PyObject *o, int depth) {
    int rc = put_scalar(st, o);
    if (rc != 0) {
        if (rc < 0) return NULL;
        return over_budget(st) ? NULL : Py_NewRef(o);
    }
    PyTypeObject *t = Py_TYPE(o);
    int container = t == &PyDict_Type || t == &PyList_Type || t == &PyTuple_Type ||
                    t == &PySet_Type || t == &PyFrozenSet_Type;
    if (container) {
        if (depth >= HARD_DEPTH) {
            st->bail = 1;
            return NULL;
        }
        if (st->counting) st->nodes++;
        if (over_budget(st)) return NULL;
        if (t == &PyDict_Type) return enc_dict(st, o, depth);
        if (t == &PyList_Type) return enc_seq(st, o, depth, 1);
        if (t == &PyTuple_Type) return enc_seq(st, o, depth, 0);
        return enc_set(st, o, t == &PyFrozenSet_Type);
    }
    Py_ssize_t mark = st->len;
    rc = put_instance(st, o);
    if (rc < 0) return NULL;
    if (rc > 0) {
        if (st->counting) st->nodes++;
        return over_budget(st) ? NULL : Py_NewRef(o);
    }
    st->len = mark;
    return call_other(st, o, depth);
}

/* ---- the Python type ----------------------------------------------------------------------- */

static PyObject *Encoder_encode(Encoder *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "encode(obj, on_other) takes two arguments");
        return NULL;
    }
    State *st = PyMem_Malloc(sizeof(State));
    if (st == NULL) return PyErr_NoMemory();
    st->enc = self;
    st->on_other = args[1] == Py_None ? NULL : args[1];
    st->box = NULL;
    st->buf = NULL;
    st->len = st->cap = 0;
    st->nodes = st->nbytes = 0;
    st->memo_next = 0;
    for (int i = 0; i < N_CLS; i++) st->cls_memo[i] = -1;
    st->ntz = 0;
    st->nkeys = 0;
    memset(st->key_obj, 0, sizeof(st->key_obj));
    st->bail = 0;
    st->counting = 1;
    PyObject *result = NULL, *clean = NULL;
    /* one frame holds the whole pickle, so an unpickler reading from a file reads it once */
    if (grow(st, 4096) == 0 && put(st, "\x80\x05\x95\0\0\0\0\0\0\0\0", 11) == 0) {
        clean = enc_value(st, args[0], 0);
        if (clean != NULL && put1(st, OP_STOP) == 0) {
            le64(st->buf + 3, (uint64_t)(st->len - 11));
            PyObject *data = PyBytes_FromStringAndSize(st->buf, st->len);
            if (data != NULL)
                result = PyTuple_Pack(3, clean, data, st->box != NULL ? st->box : Py_None);
            Py_XDECREF(data);
        }
    }
    Py_XDECREF(clean);
    Py_XDECREF(st->box);
    if (st->nkeys)
        for (int i = 0; i < KEY_SLOTS; i++) Py_XDECREF(st->key_obj[i]);
    for (int i = 0; i < st->ntz; i++) Py_DECREF(st->tz_obj[i]);
    int bail = st->bail;
    PyMem_Free(st->buf);
    PyMem_Free(st);
    if (result == NULL && bail && !PyErr_Occurred()) Py_RETURN_NONE;
    return result;
}

static int Encoder_init(Encoder *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"limits", "redact_urls", "allowed", "classes", "names",
                             "secret_cache", "is_secret", "numeric_only", "url_redact", NULL};
    PyObject *limits, *classes, *names, *cache, *is_secret, *numeric_only, *url_redact;
    int redact_urls;
    unsigned int allowed;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!pIO!O!O!OOO", kwlist, &PyTuple_Type, &limits,
                                     &redact_urls, &allowed, &PyTuple_Type, &classes,
                                     &PyTuple_Type, &names, &PyDict_Type, &cache, &is_secret,
                                     &numeric_only, &url_redact))
        return -1;
    if (PyTuple_GET_SIZE(limits) != 6 || PyTuple_GET_SIZE(classes) != N_CLS ||
        PyTuple_GET_SIZE(names) != N_CLS) {
        PyErr_SetString(PyExc_ValueError, "limits needs 6 ints; classes and names 8 entries");
        return -1;
    }
    Py_ssize_t *lim[6] = {&self->max_depth, &self->max_items, &self->max_str_len,
                          &self->max_bytes_len, &self->max_nodes, &self->max_total_bytes};
    for (int i = 0; i < 6; i++) {
        *lim[i] = PyLong_AsSsize_t(PyTuple_GET_ITEM(limits, i));
        if (*lim[i] == -1 && PyErr_Occurred()) return -1;
    }
    if (self->max_depth >= HARD_DEPTH) self->max_depth = HARD_DEPTH - 1;
    /* the datetime macros read C structs: the classes must be the real ones, in our order */
    if (PyTuple_GET_ITEM(classes, C_DATETIME) != (PyObject *)PyDateTimeAPI->DateTimeType ||
        PyTuple_GET_ITEM(classes, C_DATE) != (PyObject *)PyDateTimeAPI->DateType ||
        PyTuple_GET_ITEM(classes, C_TIME) != (PyObject *)PyDateTimeAPI->TimeType ||
        PyTuple_GET_ITEM(classes, C_TIMEDELTA) != (PyObject *)PyDateTimeAPI->DeltaType ||
        PyTuple_GET_ITEM(classes, C_TIMEZONE) != (PyObject *)Py_TYPE(PyDateTimeAPI->TimeZone_UTC)) {
        PyErr_SetString(PyExc_ValueError,
                        "classes must be (ZoneInfo, datetime, date, time, timedelta, timezone, "
                        "UUID, Decimal)");
        return -1;
    }
    for (int i = 0; i < N_CLS; i++) {
        PyObject *pair = PyTuple_GET_ITEM(names, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            !PyUnicode_CheckExact(PyTuple_GET_ITEM(pair, 0)) ||
            !PyUnicode_CheckExact(PyTuple_GET_ITEM(pair, 1))) {
            PyErr_SetString(PyExc_ValueError, "names must be (module, qualname) str pairs");
            return -1;
        }
        Py_XSETREF(self->cls[i], Py_NewRef(PyTuple_GET_ITEM(classes, i)));
        Py_XSETREF(self->names[i], Py_NewRef(pair));
    }
    self->redact_urls = redact_urls;
    self->allowed = allowed;
    Py_XSETREF(self->secret_cache, Py_NewRef(cache));
    Py_XSETREF(self->is_secret, Py_NewRef(is_secret));
    Py_XSETREF(self->numeric_only, Py_NewRef(numeric_only));
    Py_XSETREF(self->url_redact, Py_NewRef(url_redact));
    return 0;
}

static int Encoder_traverse(Encoder *self, visitproc visit, void *arg) {
    for (int i = 0; i < N_CLS; i++) {
        Py_VISIT(self->cls[i]);
        Py_VISIT(self->names[i]);
    }
    Py_VISIT(self->secret_cache);
    Py_VISIT(self->is_secret);
    Py_VISIT(self->numeric_only);
    Py_VISIT(self->url_redact);
    return 0;
}

static int Encoder_clear(Encoder *self) {
    for (int i = 0; i < N_CLS; i++) {
        Py_CLEAR(self->cls[i]);
        Py_CLEAR(self->names[i]);
    }
    Py_CLEAR(self->secret_cache);
    Py_CLEAR(self->is_secret);
    Py_CLEAR(self->numeric_only);
    Py_CLEAR(self->url_redact);
    return 0;
}

static void Encoder_dealloc(Encoder *self) {
    PyObject_GC_UnTrack(self);
    Encoder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Encoder_methods[] = {
    {"encode", (PyCFunction)(void (*)(void))Encoder_encode, METH_FASTCALL,
     "encode(obj, on_other) -> (clean, pickle, box | None) | None"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EncoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "agentkit.sanitizer._native.Encoder",
    .tp_basicsize = sizeof(Encoder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The compiled check-clean-and-pickle pass (see the module source).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Encoder_init,
    .tp_dealloc = (destructor)Encoder_dealloc,
    .tp_traverse = (traverseproc)Encoder_traverse,
    .tp_clear = (inquiry)Encoder_clear,
    .tp_methods = Encoder_methods,
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "agentkit.sanitizer._native",
    "The compiled fast path of agentkit's sanitizer.", -1, NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
    PyDateTime_IMPORT;
    SCHEME_SEP = PyUnicode_InternFromString("://");
    if (SCHEME_SEP == NULL) return NULL;
    if (PyDateTimeAPI == NULL) return NULL;
    if (PyType_Ready(&EncoderType) < 0) return NULL;
    PyObject *m = PyModule_Create(&native_module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Encoder", (PyObject *)&EncoderType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
