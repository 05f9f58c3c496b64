/*
 * deliver_request - the delivery request and reply codec (deliver.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mail/deliver_request.h"
#include "mail/queue.h"
#include "util/util.h"

#define DELIVER_MAX_OFFSET (1L << 40)

void deliver_attr_name(const char *base, size_t k, char *out, size_t size)
{
    (void)snprintf(out, size, "%s_%zu", base, k);
}

void deliver_request_build(const deliver_request_t *req, attr_list_t *out)
{
    char name[ATTR_MAX_NAME + 1];

    attr_list_reset(out);
    attr_add(out, DA_REQUEST, DELIVER_REQUEST_DELIVER);
    attr_add(out, DA_QUEUE_NAME, req->queue_name ? req->queue_name : QUEUE_ACTIVE);
    attr_add(out, DA_QUEUE_ID, req->queue_id);
    if (req->transport != NULL && req->transport[0] != '\0')
        attr_add(out, DA_TRANSPORT, req->transport);
    attr_add(out, DA_NEXTHOP, req->nexthop ? req->nexthop : "");
    if (req->active_usec != 0) {
        char v[32];

        (void)snprintf(v, sizeof(v), "%llu",
                       (unsigned long long)req->active_usec);
        attr_add(out, DA_ACTIVE_USEC, v);
    }
    attr_add_long(out, DA_RCPT_COUNT, (long)req->nrcpts);
    for (size_t k = 0; k < req->nrcpts; k++) {
        deliver_attr_name(DA_RECIPIENT, k, name, sizeof(name));
        attr_add(out, name, req->rcpts[k].address);
        deliver_attr_name(DA_RCPT_OFFSET, k, name, sizeof(name));
        attr_add_long(out, name, req->rcpts[k].offset);
    }
}

/* indexed_k - K when name is "base_K" (no leading zeros), else -1 */
static long indexed_k(const char *name, const char *base)
{
    size_t len = strlen(base);
    const char *p = name + len + 1;
    long k = 0;

    if (strncmp(name, base, len) != 0 || name[len] != '_' || *p == '\0'
        || (p[0] == '0' && p[1] != '\0'))
        return -1;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || k > 1000000)
            return -1;
        k = k * 10 + (*p - '0');
    }
    return k;
}

/* request_names_ok - no attribute of ours twice, no recipient index at
   or past n (names of no meaning to us are ignored: deliver.h) */
static int request_names_ok(const attr_list_t *in, size_t n)
{
    static const char *const fixed[] = {
        DA_REQUEST, DA_QUEUE_NAME, DA_QUEUE_ID, DA_TRANSPORT, DA_NEXTHOP,
        DA_ACTIVE_USEC, DA_RCPT_COUNT,
    };

    for (size_t i = 0; i < in->count; i++) {
        const char *name = in->items[i].name;
        long k = indexed_k(name, DA_RECIPIENT);
        bool ours = false;

        if (k < 0)
            k = indexed_k(name, DA_RCPT_OFFSET);
        if (k >= (long)n)
            return -1;
        ours = k >= 0;
        for (size_t f = 0; !ours && f < sizeof(fixed) / sizeof(fixed[0]); f++)
            ours = strcmp(name, fixed[f]) == 0;
        if (!ours)
            continue;
        for (size_t j = 0; j < i; j++)
            if (strcmp(name, in->items[j].name) == 0)
                return -1;
    }
    return 0;
}

/* parse_usec - a decimal microsecond time stamp */
static int parse_usec(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = (uint64_t)v;
    return 0;
}

int deliver_request_parse(const attr_list_t *in, deliver_request_t *req,
                          size_t max_rcpts, const char **error_r)
{
    const char *kind = attr_get(in, DA_REQUEST);
    const char *usec = attr_get(in, DA_ACTIVE_USEC);
    char name[ATTR_MAX_NAME + 1];
    long n;

    memset(req, 0, sizeof(*req));
    if (max_rcpts > DELIVER_MAX_RCPTS)
        max_rcpts = DELIVER_MAX_RCPTS;
    req->queue_name = attr_get(in, DA_QUEUE_NAME);
    req->queue_id = attr_get(in, DA_QUEUE_ID);
    req->transport = attr_get(in, DA_TRANSPORT);
    req->nexthop = attr_get(in, DA_NEXTHOP);
    if (kind == NULL || strcmp(kind, DELIVER_REQUEST_DELIVER) != 0) {
        *error_r = "not a delivery request";
        return -1;
    }
    if (req->queue_name == NULL || strcmp(req->queue_name, QUEUE_ACTIVE) != 0
        || !queue_id_valid(req->queue_id)) {
        *error_r = "bad queue name or queue ID";
        return -1;
    }
    if (attr_get_long(in, DA_RCPT_COUNT, 1, (long)max_rcpts, &n) < 0) {
        *error_r = "bad recipient count";
        return -1;
    }
    if (request_names_ok(in, (size_t)n) < 0) {
        *error_r = "repeated attribute or recipient index out of range";
        return -1;
    }
    if (usec != NULL && parse_usec(usec, &req->active_usec) < 0) {
        *error_r = "bad active_usec";
        return -1;
    }
    if (req->transport == NULL)
        req->transport = "";
    if (req->nexthop == NULL)
        req->nexthop = "";
    req->nrcpts = (size_t)n;
    for (size_t k = 0; k < req->nrcpts; k++) {
        deliver_attr_name(DA_RECIPIENT, k, name, sizeof(name));
        req->rcpts[k].address = attr_get(in, name);
        deliver_attr_name(DA_RCPT_OFFSET, k, name, sizeof(name));
        if (req->rcpts[k].address == NULL
            || attr_get_long(in, name, 1, DELIVER_MAX_OFFSET,
                             &req->rcpts[k].offset) < 0) {
            *error_r = "bad recipient or recipient offset";
            return -1;
        }
        for (size_t j = 0; j < k; j++)
            if (req->rcpts[j].offset == req->rcpts[k].offset) {
                *error_r = "one recipient record named twice";
                return -1;
            }
    }
    return 0;
}

void deliver_reply_add(attr_list_t *reply, size_t k, int status,
                       const char *dsn, const char *reason)
{
    char name[ATTR_MAX_NAME + 1];

    deliver_attr_name(DA_STATUS, k, name, sizeof(name));
    attr_add_long(reply, name, status);
    deliver_attr_name(DA_DSN, k, name, sizeof(name));
    attr_add(reply, name, dsn ? dsn : "");
    deliver_attr_name(DA_REASON, k, name, sizeof(name));
    attr_add(reply, name, reason ? reason : "");
}

void deliver_reply_dest_dead(attr_list_t *reply)
{
    attr_add(reply, DA_DEST_STATUS, "dead");
}

int deliver_reply_get(const attr_list_t *reply, size_t k, int *status,
                      const char **dsn, const char **reason)
{
    char name[ATTR_MAX_NAME + 1];
    long v;

    deliver_attr_name(DA_STATUS, k, name, sizeof(name));
    if (attr_get_long(reply, name, 0, 9, &v) < 0
        || (v != DELIVER_OK && v != DELIVER_DEFER && v != DELIVER_BOUNCE))
        return -1;
    *status = (int)v;
    deliver_attr_name(DA_DSN, k, name, sizeof(name));
    *dsn = attr_get(reply, name);
    deliver_attr_name(DA_REASON, k, name, sizeof(name));
    *reason = attr_get(reply, name);
    if (*dsn == NULL)
        *dsn = "";
    if (*reason == NULL)
        *reason = "";
    return 0;
}

int deliver_reply_is_dest_dead(const attr_list_t *reply)
{
    const char *v = attr_get(reply, DA_DEST_STATUS);

    return v != NULL && strcmp(v, "dead") == 0;
}
