/*
 * condition: the small expression language of a flow's `condition`, e.g.
 *
 *   payload.risk.dash_score >= 14 or payload.criteria.repeat == true
 *
 * Grammar (keywords lowercase; text in '...' or "..." without escapes):
 *   expr    := or
 *   or      := and ('or' and)*
 *   and     := not ('and' not)*
 *   not     := 'not' not | '(' expr ')' | cmp
 *   cmp     := operand (op operand)? | operand 'in' '[' literal (',' literal)* ']'
 *            | operand 'in' payload.<dotted.path>      (the array there holds it)
 *   op      := '==' | '!=' | '<' | '<=' | '>' | '>='
 *   operand := payload.<dotted.path>
 *            | event.area | event.purpose | event.consent | event.type
 *            | event.basis | event.override
 *            | literal
 *   literal := integer | decimal | text | true | false
 *
 * A condition is parsed once, when the agreement loads, into an AST in the
 * config's arena; evaluation walks it without allocating. Evaluation never
 * fails: a missing payload field, a missing event field or a type mismatch
 * (text against number, ordering of booleans, a map or array) makes that one
 * comparison false, so a condition that cannot be decided denies. Note that
 * `not` turns such a false into true: write `payload.x == false`, not
 * `not payload.x`, when absence must deny. A lone operand is true only if it
 * is the boolean true. Numbers compare by value across integer and decimal;
 * text compares bytewise, which orders ISO dates correctly.
 */
#include "config_internal.h"

#include "sharehub/alloc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COND_MAX_DEPTH 32 /* nesting of not/parentheses: keeps recursion bounded */
#define COND_MAX_LIST  64 /* literals in one `in` list */

typedef enum { N_OR, N_AND, N_NOT, N_CMP, N_IN, N_MEMBER, N_TRUTH } node_kind_t;
typedef enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } cmp_op_t;
typedef enum { V_MISSING, V_BOOL, V_INT, V_FLOAT, V_STR } vtype_t;
typedef enum {
    SRC_LIT,
    SRC_PAYLOAD,
    SRC_AREA,
    SRC_PURPOSE,
    SRC_CONSENT,
    SRC_TYPE,
    SRC_BASIS,
    SRC_OVERRIDE,
} source_t;

typedef struct value {
    vtype_t t;
    bool b;
    int64_t i;
    double f;
    const char *s;
} value_t;

typedef struct operand {
    source_t src;
    const char *path; /* SRC_PAYLOAD: dotted path below the payload */
    value_t lit;      /* SRC_LIT */
} operand_t;

typedef struct cond_node cond_node_t;

struct cond_node {
    node_kind_t kind;
    cmp_op_t op;              /* N_CMP */
    const cond_node_t *a, *b; /* N_OR, N_AND: both; N_NOT: a */
    operand_t l, r;           /* N_CMP, N_MEMBER: both; N_IN, N_TRUTH: l */
    const value_t *list;      /* N_IN */
    size_t n_list;
};

/* ---- lexer -------------------------------------------------------------- */

typedef enum {
    T_END,
    T_IDENT,
    T_INT,
    T_DEC,
    T_STR,
    T_OP,
    T_LP,
    T_RP,
    T_LB,
    T_RB,
    T_COMMA,
    T_BAD
} tok_type_t;

typedef struct token {
    tok_type_t t;
    const char *s; /* into the text */
    size_t len;
    size_t col;  /* 1-based */
    cmp_op_t op; /* T_OP */
} token_t;

typedef struct parser {
    const char *text;
    size_t pos;
    token_t tok;
    shub_arena_t *arena;
    char *msg;
    size_t msg_size;
    int depth;
    int rc; /* sticky: first error */
} parser_t;

static bool ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool ident_char(char c)
{
    return ident_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void lex(parser_t *p)
{
    const char *t = p->text;
    while (t[p->pos] == ' ' || t[p->pos] == '\t' || t[p->pos] == '\n' ||
           t[p->pos] == '\r')
        p->pos++;
    size_t start = p->pos;
    token_t *k = &p->tok;
    k->s = t + start;
    k->col = start + 1;
    k->len = 1;
    char c = t[start];
    if (!c) {
        k->t = T_END;
        k->len = 0;
        return;
    }
    if (ident_start(c)) {
        size_t e = start;
        while (ident_char(t[e]))
            e++;
        k->t = T_IDENT;
        k->len = e - start;
    } else if (is_digit(c) || (c == '-' && is_digit(t[start + 1]))) {
        size_t e = start + 1;
        while (is_digit(t[e]))
            e++;
        k->t = T_INT;
        if (t[e] == '.' && is_digit(t[e + 1])) {
            e++;
            while (is_digit(t[e]))
                e++;
            k->t = T_DEC;
        }
        k->len = e - start;
    } else if (c == '\'' || c == '"') {
        const char *end = strchr(t + start + 1, c);
        if (!end) {
            k->t = T_BAD;
            k->len = strlen(t + start);
        } else {
            k->t = T_STR;
            k->len = (size_t)(end - (t + start)) + 1;
        }
    } else if (c == '(' || c == ')' || c == '[' || c == ']' || c == ',') {
        k->t = c == '('   ? T_LP
               : c == ')' ? T_RP
               : c == '[' ? T_LB
               : c == ']' ? T_RB
                          : T_COMMA;
    } else if ((c == '=' || c == '!') && t[start + 1] == '=') {
        k->t = T_OP;
        k->op = c == '=' ? OP_EQ : OP_NE;
        k->len = 2;
    } else if (c == '<' || c == '>') {
        bool eq = t[start + 1] == '=';
        k->t = T_OP;
        k->op = c == '<' ? (eq ? OP_LE : OP_LT) : (eq ? OP_GE : OP_GT);
        k->len = eq ? 2 : 1;
    } else {
        k->t = T_BAD;
        /* one UTF-8 sequence, so the message quotes a whole character */
        while ((t[start + k->len] & 0xc0) == 0x80)
            k->len++;
    }
    p->pos = start + k->len;
}

static bool is_kw(const token_t *k, const char *kw)
{
    return k->t == T_IDENT && k->len == strlen(kw) && memcmp(k->s, kw, k->len) == 0;
}

static void fail(parser_t *p, const char *what)
{
    if (p->rc)
        return;
    p->rc = SHUB_ECONFIG;
    const token_t *k = &p->tok;
    if (what)
        snprintf(p->msg, p->msg_size, "%s at column %zu", what, k->col);
    else if (k->t == T_END)
        snprintf(p->msg, p->msg_size, "unexpected end of condition at column %zu",
                 k->col);
    else if (k->t == T_BAD && (k->s[0] == '\'' || k->s[0] == '"'))
        snprintf(p->msg, p->msg_size, "unterminated text at column %zu", k->col);
    else
        snprintf(p->msg, p->msg_size, "unexpected '%.*s' at column %zu",
                 (int)(k->len > 40 ? 40 : k->len), k->s, k->col);
}

static cond_node_t *new_node(parser_t *p, node_kind_t kind)
{
    cond_node_t *n = shub_arena_alloc(p->arena, sizeof *n);
    if (!n) {
        if (!p->rc)
            snprintf(p->msg, p->msg_size, "out of memory");
        p->rc = SHUB_ENOMEM;
        return NULL;
    }
    n->kind = kind;
    return n;
}

/* ---- parser ------------------------------------------------------------- */

static bool parse_literal(parser_t *p, value_t *v)
{
    token_t *k = &p->tok;
    char buf[64];
    if (is_kw(k, "true") || is_kw(k, "false")) {
        v->t = V_BOOL;
        v->b = is_kw(k, "true");
    } else if (k->t == T_INT || k->t == T_DEC) {
        if (k->len >= sizeof buf) {
            fail(p, "number too long");
            return false;
        }
        memcpy(buf, k->s, k->len);
        buf[k->len] = '\0';
        errno = 0;
        if (k->t == T_INT) {
            long long i = strtoll(buf, NULL, 10);
            if (errno) {
                fail(p, "number out of range");
                return false;
            }
            v->t = V_INT;
            v->i = i;
        } else {
            v->t = V_FLOAT;
            v->f = strtod(buf, NULL);
            if (errno || !isfinite(v->f)) {
                fail(p, "number out of range");
                return false;
            }
        }
    } else if (k->t == T_STR) {
        char *s = shub_arena_strndup(p->arena, k->s + 1, k->len - 2);
        if (!s) {
            p->rc = SHUB_ENOMEM;
            snprintf(p->msg, p->msg_size, "out of memory");
            return false;
        }
        v->t = V_STR;
        v->s = s;
    } else {
        fail(p, NULL);
        return false;
    }
    lex(p);
    return true;
}

static const struct {
    const char *name;
    source_t src;
} event_fields[] = {
    {"event.area", SRC_AREA},       {"event.purpose", SRC_PURPOSE},
    {"event.consent", SRC_CONSENT}, {"event.type", SRC_TYPE},
    {"event.basis", SRC_BASIS},     {"event.override", SRC_OVERRIDE},
};

static bool parse_operand(parser_t *p, operand_t *o)
{
    token_t *k = &p->tok;
    if (k->t != T_IDENT || is_kw(k, "true") || is_kw(k, "false")) {
        o->src = SRC_LIT;
        return parse_literal(p, &o->lit);
    }
    if (k->len > 8 && memcmp(k->s, "payload.", 8) == 0) {
        char *path = shub_arena_strndup(p->arena, k->s + 8, k->len - 8);
        if (!path) {
            p->rc = SHUB_ENOMEM;
            snprintf(p->msg, p->msg_size, "out of memory");
            return false;
        }
        if (k->len - 8 >= SHUB_VAL_MAX_PATH || !shub_val_is_path(path)) {
            fail(p, NULL);
            return false;
        }
        o->src = SRC_PAYLOAD;
        o->path = path;
        lex(p);
        return true;
    }
    for (size_t i = 0; i < sizeof event_fields / sizeof event_fields[0]; i++) {
        if (is_kw(k, event_fields[i].name)) {
            o->src = event_fields[i].src;
            lex(p);
            return true;
        }
    }
    fail(p, NULL);
    return false;
}

static const cond_node_t *parse_or(parser_t *p);

static const cond_node_t *parse_cmp(parser_t *p)
{
    operand_t l = {0};
    if (!parse_operand(p, &l))
        return NULL;
    cond_node_t *n;
    if (p->tok.t == T_OP) {
        cmp_op_t op = p->tok.op;
        lex(p);
        operand_t r = {0};
        if (!parse_operand(p, &r) || !(n = new_node(p, N_CMP)))
            return NULL;
        n->op = op;
        n->l = l;
        n->r = r;
        return n;
    }
    if (is_kw(&p->tok, "in")) {
        lex(p);
        if (p->tok.t != T_LB) {
            /* `'repeat' in payload.risk.criteria`: membership of an array. */
            token_t *k = &p->tok;
            if (k->t != T_IDENT || k->len <= 8 || memcmp(k->s, "payload.", 8) != 0) {
                fail(p, NULL); /* neither a [list] nor a payload field */
                return NULL;
            }
            operand_t r = {0};
            if (!parse_operand(p, &r))
                return NULL;
            if (!(n = new_node(p, N_MEMBER)))
                return NULL;
            n->l = l;
            n->r = r;
            return n;
        }
        lex(p);
        value_t items[COND_MAX_LIST];
        size_t count = 0;
        for (;;) {
            if (count == COND_MAX_LIST) {
                fail(p, "list longer than 64 entries");
                return NULL;
            }
            if (!parse_literal(p, &items[count++]))
                return NULL;
            if (p->tok.t == T_RB)
                break;
            if (p->tok.t != T_COMMA) {
                fail(p, NULL);
                return NULL;
            }
            lex(p);
        }
        lex(p);
        value_t *list = shub_arena_alloc(p->arena, count * sizeof *list);
        if (!list || !(n = new_node(p, N_IN))) {
            p->rc = SHUB_ENOMEM;
            snprintf(p->msg, p->msg_size, "out of memory");
            return NULL;
        }
        memcpy(list, items, count * sizeof *list);
        n->l = l;
        n->list = list;
        n->n_list = count;
        return n;
    }
    if (!(n = new_node(p, N_TRUTH)))
        return NULL;
    n->l = l;
    return n;
}

static const cond_node_t *parse_not(parser_t *p)
{
    if (++p->depth > COND_MAX_DEPTH) {
        fail(p, "condition nested too deeply");
        return NULL;
    }
    const cond_node_t *r;
    if (is_kw(&p->tok, "not")) {
        lex(p);
        const cond_node_t *a = parse_not(p);
        cond_node_t *n = a ? new_node(p, N_NOT) : NULL;
        if (n)
            n->a = a;
        r = n;
    } else if (p->tok.t == T_LP) {
        lex(p);
        r = parse_or(p);
        if (r && p->tok.t != T_RP) {
            fail(p, NULL);
            r = NULL;
        } else if (r) {
            lex(p);
        }
    } else {
        r = parse_cmp(p);
    }
    p->depth--;
    return r;
}

static const cond_node_t *parse_binary(parser_t *p, const char *kw, node_kind_t kind,
                                       const cond_node_t *(*sub)(parser_t *))
{
    const cond_node_t *a = sub(p);
    while (a && is_kw(&p->tok, kw)) {
        lex(p);
        const cond_node_t *b = sub(p);
        cond_node_t *n = b ? new_node(p, kind) : NULL;
        if (!n)
            return NULL;
        n->a = a;
        n->b = b;
        a = n;
    }
    return a;
}

static const cond_node_t *parse_and(parser_t *p)
{
    return parse_binary(p, "and", N_AND, parse_not);
}

static const cond_node_t *parse_or(parser_t *p)
{
    return parse_binary(p, "or", N_OR, parse_and);
}

/* A parsed condition; `arena` owns it when it stands alone (new/destroy),
 * and is NULL when it lives in a loaded config's arena. */
struct shub_condition {
    shub_arena_t *arena;
    const cond_node_t *root;
};

int shub_cond_parse(shub_arena_t *arena, const char *text, shub_condition_t **out,
                    char *msg, size_t msg_size)
{
    parser_t p = {.text = text, .arena = arena, .msg = msg, .msg_size = msg_size};
    if (msg_size)
        msg[0] = '\0';
    lex(&p);
    const cond_node_t *root = parse_or(&p);
    if (root && p.tok.t != T_END)
        fail(&p, NULL);
    if (p.rc)
        return p.rc;
    if (!root)
        return SHUB_ECONFIG;
    shub_condition_t *c = shub_arena_alloc(arena, sizeof *c);
    if (!c)
        return SHUB_ENOMEM;
    c->root = root;
    *out = c;
    return 0;
}

/* ---- evaluation --------------------------------------------------------- */

static value_t text_or_missing(const char *s)
{
    value_t v = {0};
    if (s) {
        v.t = V_STR;
        v.s = s;
    }
    return v;
}

/* A payload value as a comparable value; anything else is missing. */
static value_t from_val(const shub_val_t *x)
{
    value_t v = {0};
    if (!x)
        return v;
    switch (x->type) {
    case SHUB_VAL_BOOL:
        v.t = V_BOOL;
        v.b = x->as.b;
        break;
    case SHUB_VAL_INT:
        v.t = V_INT;
        v.i = x->as.i;
        break;
    case SHUB_VAL_FLOAT:
        if (isfinite(x->as.f)) {
            v.t = V_FLOAT;
            v.f = x->as.f;
        }
        break;
    case SHUB_VAL_STR:
        v.t = V_STR;
        v.s = x->as.str;
        break;
    default:
        break; /* nil, bytes, arrays and maps compare with nothing */
    }
    return v;
}

static value_t resolve(const operand_t *o, const shub_event_t *ev)
{
    value_t v = {0};
    switch (o->src) {
    case SRC_LIT:
        return o->lit;
    case SRC_PAYLOAD:
        return from_val(shub_val_at(&ev->payload, o->path));
    case SRC_AREA:
        return text_or_missing(ev->area);
    case SRC_PURPOSE:
        return text_or_missing(ev->purpose);
    case SRC_TYPE:
        return text_or_missing(ev->type);
    case SRC_BASIS:
        return text_or_missing(ev->basis);
    case SRC_OVERRIDE:
        return text_or_missing(ev->override);
    case SRC_CONSENT: {
        const char *name = shub_consent_name(ev->consent);
        return text_or_missing(strcmp(name, "?") == 0 ? NULL : name);
    }
    }
    return v;
}

static bool ordered(int c, cmp_op_t op)
{
    switch (op) {
    case OP_EQ:
        return c == 0;
    case OP_NE:
        return c != 0;
    case OP_LT:
        return c < 0;
    case OP_LE:
        return c <= 0;
    case OP_GT:
        return c > 0;
    case OP_GE:
        return c >= 0;
    }
    return false;
}

static bool compare(const value_t *a, cmp_op_t op, const value_t *b)
{
    if (a->t == V_MISSING || b->t == V_MISSING)
        return false;
    bool an = a->t == V_INT || a->t == V_FLOAT, bn = b->t == V_INT || b->t == V_FLOAT;
    if (an && bn) {
        if (a->t == V_INT && b->t == V_INT)
            return ordered(a->i < b->i ? -1 : a->i > b->i, op);
        double x = a->t == V_INT ? (double)a->i : a->f;
        double y = b->t == V_INT ? (double)b->i : b->f;
        return ordered(x < y ? -1 : x > y, op);
    }
    if (a->t != b->t)
        return false;
    if (a->t == V_STR)
        return ordered(strcmp(a->s, b->s), op);
    if (op != OP_EQ && op != OP_NE) /* booleans have no order */
        return false;
    return ordered(a->b != b->b, op);
}

static bool eval(const cond_node_t *n, const shub_event_t *ev)
{
    if (!n)
        return true;
    switch (n->kind) {
    case N_OR:
        return eval(n->a, ev) || eval(n->b, ev);
    case N_AND:
        return eval(n->a, ev) && eval(n->b, ev);
    case N_NOT:
        return !eval(n->a, ev);
    case N_CMP: {
        value_t a = resolve(&n->l, ev), b = resolve(&n->r, ev);
        return compare(&a, n->op, &b);
    }
    case N_IN: {
        value_t a = resolve(&n->l, ev);
        for (size_t i = 0; i < n->n_list; i++)
            if (compare(&a, OP_EQ, &n->list[i]))
                return true;
        return false;
    }
    case N_MEMBER: {
        value_t a = resolve(&n->l, ev);
        const shub_val_t *arr = shub_val_at(&ev->payload, n->r.path);
        if (!arr || arr->type != SHUB_VAL_ARRAY)
            return false;
        for (uint32_t i = 0; i < arr->len; i++) {
            value_t b = from_val(&arr->as.items[i]);
            if (compare(&a, OP_EQ, &b))
                return true;
        }
        return false;
    }
    case N_TRUTH: {
        value_t a = resolve(&n->l, ev);
        return a.t == V_BOOL && a.b;
    }
    }
    return false;
}

/* ---- three-valued evaluation (what-if) ---------------------------------- */

/* A payload operand whose value the rebuilt event does not hold: the leaf is
 * there (the log names it) but nil. */
static bool unknown_operand(const operand_t *o, const shub_event_t *ev)
{
    if (o->src != SRC_PAYLOAD)
        return false;
    const shub_val_t *v = shub_val_at(&ev->payload, o->path);
    return v && v->type == SHUB_VAL_NIL;
}

/* Kleene's logic over eval(): a comparison that reads an unknown value is
 * unknown; `and`, `or` and `not` decide whenever the known part does. */
static shub_cond_truth_t eval3(const cond_node_t *n, const shub_event_t *ev)
{
    if (!n)
        return SHUB_COND_TRUE;
    switch (n->kind) {
    case N_OR:
    case N_AND: {
        /* One side with the value that decides (true for `or`, false for
         * `and`) decides; two sides that agree give their value. */
        shub_cond_truth_t a = eval3(n->a, ev), b = eval3(n->b, ev);
        shub_cond_truth_t decides = n->kind == N_OR ? SHUB_COND_TRUE : SHUB_COND_FALSE;
        if (a == decides || b == decides)
            return decides;
        return a == b ? a : SHUB_COND_UNKNOWN;
    }
    case N_NOT: {
        shub_cond_truth_t a = eval3(n->a, ev);
        return a == SHUB_COND_UNKNOWN ? a : a == SHUB_COND_TRUE ? SHUB_COND_FALSE
                                                                : SHUB_COND_TRUE;
    }
    case N_MEMBER:
        if (unknown_operand(&n->l, ev) || unknown_operand(&n->r, ev))
            return SHUB_COND_UNKNOWN;
        return eval(n, ev) ? SHUB_COND_TRUE : SHUB_COND_FALSE;
    case N_CMP:
        if (unknown_operand(&n->r, ev))
            return SHUB_COND_UNKNOWN;
        /* fall through */
    case N_IN:
    case N_TRUTH:
        if (unknown_operand(&n->l, ev))
            return SHUB_COND_UNKNOWN;
        return eval(n, ev) ? SHUB_COND_TRUE : SHUB_COND_FALSE;
    }
    return SHUB_COND_FALSE;
}

shub_cond_truth_t shub_condition_eval_partial(const shub_condition_t *cond,
                                              const shub_event_t *ev)
{
    return cond && ev ? eval3(cond->root, ev) : SHUB_COND_FALSE;
}

/* ---- stand-alone conditions --------------------------------------------- */

int shub_condition_new(const char *text, shub_condition_t **cond_p, shub_err_t *err)
{
    if (!text || !cond_p)
        return shub_err_set(err, SHUB_EINVAL, "no condition text");
    if (strlen(text) > SHUB_CONFIG_MAX_CONDITION)
        return shub_err_set(err, SHUB_ECONFIG, "condition: %zu bytes exceeds limit %d",
                            strlen(text), SHUB_CONFIG_MAX_CONDITION);
    shub_arena_t *arena = shub_arena_new(1024);
    if (!arena)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    char msg[SHUB_ERR_MSG_MAX - 16];
    shub_condition_t *c = NULL;
    int rc = shub_cond_parse(arena, text, &c, msg, sizeof msg);
    if (rc) {
        shub_arena_destroy(&arena);
        if (rc == SHUB_ENOMEM)
            return shub_err_set(err, rc, "out of memory");
        return shub_err_set(err, rc, "condition: %s", msg);
    }
    c->arena = arena; /* it holds c itself: destroying it frees all */
    *cond_p = c;
    return 0;
}

void shub_condition_destroy(shub_condition_t **cond_p)
{
    if (!cond_p || !*cond_p)
        return;
    shub_arena_t *arena = (*cond_p)->arena;
    shub_arena_destroy(&arena);
    *cond_p = NULL;
}

bool shub_condition_eval(const shub_condition_t *cond, const shub_event_t *ev)
{
    return cond && ev && eval(cond->root, ev);
}
