/*
 * smtpd_bdat - CHUNKING (RFC 3030): "BDAT size [LAST]" followed by
 * exactly size bytes of message content.
 *
 * The bytes are counted, never parsed for an end: they go through the
 * DATA decoder in its chunked mode (mail/smtpdata.h), which converts
 * CR LF to LF and treats bare CR and bare LF exactly as DATA does, but
 * does no dot-unstuffing. The queue file is the one DATA uses
 * (smtpd_data_open), opened at the first accepted chunk; only the reply
 * to the LAST chunk commits it ("250 2.0.0 Ok: queued as QID", after
 * cleanup_commit), every other chunk's 250 says only how many octets
 * arrived.
 *
 * Security: a refused BDAT (no MAIL, no recipients, TLS required) is
 * answered at once and still has its bytes read and dropped, so a message body can never run as
 * commands; a BDAT whose size cannot be parsed leaves us unable to tell
 * where its bytes end, so the session is closed. While a chunk is read,
 * the deadline is DATA's (smtpd_data_deadline). The size limit is
 * enforced while the bytes arrive: past it the queue file is dropped
 * at once, the rest of the chunk is read, and the reply is 552 5.3.4.
 * A failed chunk ends the transaction (RFC 3030 2: the client must not
 * send more chunks; if it does, they get 503 and are dropped).
 */
#include "smtpd.h"

#include <stdlib.h>
#include <string.h>

#include "mail/config.h"
#include "util/log.h"
#include "util/util.h"

bool smtpd_bdat_active(const struct smtpd_session *s)
{
    return s->txn.bdat_left > 0 || s->txn.bdat_skip > 0;
}

/* bdat_chunk_done - every byte of an accepted chunk arrived */
static void bdat_chunk_done(struct smtpd_session *s, uint64_t size)
{
    if (s->txn.bdat_last) {
        if (smtpdata_end(s->txn.dec, &s->dbuf) < 0)
            buf_reset(&s->dbuf);
        smtpd_data_store(s);
        smtpd_data_finish(s);           /* the commit, or an error */
    } else if (smtpd_data_failing(s)) {
        smtpd_data_finish(s);           /* 552 or 451, transaction over */
    } else {
        s->cmd_ok[SMTP_BDAT]++;
        smtpd_reply(s, "250 2.0.0 Ok: %llu octets received",
                    (unsigned long long)size);
    }
}

/* bdat_refuse - the chunk's bytes are read and dropped (the reply was
   already sent: replies keep their order, only their timing differs) */
static void bdat_refuse(struct smtpd_session *s, uint64_t size)
{
    if (size == 0)
        return;
    s->txn.bdat_skip = size;
    s->txn.data_bytes = 0;
    smtpd_data_deadline(s, 0);
}

/* bdat_start - the first accepted chunk: the queue file and the decoder */
static bool bdat_start(struct smtpd_session *s)
{
    if (!smtpd_data_open(s))            /* replied 451 */
        return false;
    s->txn.bdat = true;
    if (s->txn.dec == NULL)
        s->txn.dec = xmalloc(sizeof(*s->txn.dec));
    smtpdata_init_chunked(s->txn.dec);
    return true;
}

bool smtpd_bdat_cmd(struct smtpd_session *s, const char *arg)
{
    uint64_t size;
    bool last;

    if (smtpcmd_bdat_arg(arg, &size, &last) < 0) {
        /* where the bytes end is unknown: they must not become commands */
        log_info("malformed BDAT from %s: disconnect", s->namaddr);
        smtpd_reply(s, "501 5.5.4 Syntax: BDAT count [LAST]");
        smtpd_close(s);
        return false;
    }
    if (smtpd_tls_refuse(s)) {          /* replied 530 */
        bdat_refuse(s, size);
        return false;
    }
    if (!s->txn.in_mail) {
        smtpd_reply(s, "503 5.5.1 Error: need MAIL command");
        bdat_refuse(s, size);
        return false;
    }
    if (s->txn.nrcpts == 0) {
        smtpd_reply(s, "554 5.5.1 Error: no valid recipients");
        bdat_refuse(s, size);
        return false;
    }
    if (!s->txn.bdat && !bdat_start(s)) {   /* replied 451 */
        smtpd_txn_reset(s);
        bdat_refuse(s, size);
        return false;
    }
    s->txn.bdat_last = last;
    s->txn.bdat_size = size;
    s->txn.data_bytes = 0;              /* each chunk is a request */
    smtpd_data_deadline(s, 0);
    if (size == 0)
        bdat_chunk_done(s, 0);
    else
        s->txn.bdat_left = size;
    return false;                       /* counted when the chunk is done */
}

/* bdat_skip_input - drop a refused chunk's bytes */
static void bdat_skip_input(struct smtpd_session *s, size_t n)
{
    size_t take = n < s->txn.bdat_skip ? n : (size_t)s->txn.bdat_skip;

    stream_consume(s->stream, take);
    s->txn.bdat_skip -= take;
    if (s->txn.bdat_skip > 0)
        smtpd_data_deadline(s, take);
}

bool smtpd_bdat_input(struct smtpd_session *s)
{
    const char *p;
    size_t n, take, used = 0;

    n = stream_peek(s->stream, &p);
    if (n == 0)
        return false;
    if (s->txn.bdat_skip > 0) {
        bdat_skip_input(s, n);
        return true;
    }
    take = n < s->txn.bdat_left ? n : (size_t)s->txn.bdat_left;
    if (smtpdata_feed(s->txn.dec, p, take, &s->dbuf, &used) < 0)
        buf_reset(&s->dbuf);            /* dbuf is unlimited: cannot be */
    stream_consume(s->stream, take);
    s->txn.bdat_left -= take;
    smtpd_data_store(s);                /* drops the file past the limit */
    if (s->txn.bdat_left > 0)
        smtpd_data_deadline(s, take);
    else
        bdat_chunk_done(s, s->txn.bdat_size);
    return true;
}
