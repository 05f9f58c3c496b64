/*
 * deliver - the delivery request protocol between qmgr and a delivery
 * agent (local today, smtp later), as attribute lists (attr.h) over the
 * agent's socket "private/<transport>".
 *
 * qmgr connects, then sends one request per recipient and waits for its
 * reply before sending the next on that connection; it keeps up to
 * $default_destination_concurrency_limit connections per transport.
 *
 * A request only names a recipient record: the queue file (queue_name,
 * queue_id) and the record (rcpt_offset, with the recipient address it
 * must hold, a cross-check). The agent takes everything else (sender,
 * original recipient, content offset and size, arrival time, client
 * attributes) from the queue file itself: a request is a claim from
 * whoever could reach the agent's socket, the file is checked
 * (local/local_queue.c). An agent ignores attributes it does not know.
 *
 * Before replying DELIVER_OK or DELIVER_BOUNCE the agent marks the
 * recipient record in the queue file itself (queue_file_mark: 'D' or 'B',
 * fdatasync'd), as Postfix's agents do, so a qmgr crash after a delivery
 * cannot cause a second one. A reply of DELIVER_DEFER leaves the record
 * pending. qmgr treats a lost connection or a timeout as DELIVER_DEFER.
 */
#ifndef TERN_DELIVER_H
#define TERN_DELIVER_H

/* request attribute names (all required) */
#define DA_REQUEST        "request"        /* "deliver" */
#define DA_QUEUE_NAME     "queue_name"     /* "active" */
#define DA_QUEUE_ID       "queue_id"
#define DA_RECIPIENT      "recipient"      /* the record's address */
#define DA_RCPT_OFFSET    "rcpt_offset"    /* recipient record offset */

/* reply attribute names */
#define DA_STATUS         "status"         /* DELIVER_* below */
#define DA_DSN            "dsn"            /* "2.0.0", "4.2.2", "5.1.1" */
#define DA_REASON         "reason"         /* human text for the log */

#define DELIVER_OK     0
#define DELIVER_DEFER  4
#define DELIVER_BOUNCE 5

#define DELIVER_REQUEST_DELIVER "deliver"

#endif
