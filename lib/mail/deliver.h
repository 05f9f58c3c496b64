/*
 * deliver - the delivery request protocol between qmgr and a delivery
 * agent (local, smtp, any transport master.conf names), as attribute
 * lists (attr.h) over the agent's socket "private/<transport>".
 *
 * qmgr connects, then sends one request at a time on a connection and
 * waits for its reply before sending the next. A request names one
 * queue file and one to DELIVER_MAX_RCPTS of its recipient records, all
 * for one next hop (qmgr groups them; local gets one at a time).
 *
 * A request only names records: the queue file (queue_name, queue_id)
 * and each recipient record (rcpt_offset_K, with the address it must
 * hold, recipient_K, a cross-check). The agent takes everything else
 * (sender, original recipient, DSN fields, content offset and size,
 * arrival time, client attributes) from the queue file itself: a
 * request is a claim from whoever could reach the agent's socket, the
 * file is checked (local/local_queue.c). nexthop is where qmgr's routing
 * (transport_maps, relayhost, ...) sends the recipients: "example.com"
 * (MX lookup), "[192.0.2.1]" or "[mx.example.com]" (no MX lookup),
 * either with ":port"; empty for local. active_usec is when qmgr took
 * the message on, for the delays= figures of the status line
 * (deliver_log.h). An agent ignores attributes it does not know.
 *
 * The reply has one status_K (DELIVER_*), dsn_K and reason_K per
 * recipient K of the request. Before replying DELIVER_OK or
 * DELIVER_BOUNCE for a recipient the agent marks its record in the
 * queue file itself (queue_msg_mark: 'D' or 'B', fdatasync'd), as
 * Postfix's agents do, so a qmgr crash after a delivery cannot cause a
 * second one. DELIVER_DEFER leaves the record pending. qmgr treats a
 * lost connection, a timeout or a reply without a recipient's status as
 * DELIVER_DEFER for the recipients concerned.
 *
 * dest_status ("ok" or "dead") is optional: an agent that could not
 * reach the next hop at all (every address refused or timed out) says
 * "dead", and qmgr stops sending that destination work for a while
 * (dead-site back-off) instead of one failing request per recipient.
 */
#ifndef TERN_DELIVER_H
#define TERN_DELIVER_H

/* request attribute names */
#define DA_REQUEST        "request"        /* "deliver" */
#define DA_QUEUE_NAME     "queue_name"     /* "active" */
#define DA_QUEUE_ID       "queue_id"
#define DA_TRANSPORT      "transport"      /* master.conf service name */
#define DA_NEXTHOP        "nexthop"        /* see above; "" for local */
#define DA_ACTIVE_USEC    "active_usec"    /* qmgr took the message on */
#define DA_RCPT_COUNT     "rcpt_count"     /* 1..DELIVER_MAX_RCPTS */
#define DA_RECIPIENT      "recipient"      /* + "_K": the record's address */
#define DA_RCPT_OFFSET    "rcpt_offset"    /* + "_K": its record offset */

/* reply attribute names, each + "_K" */
#define DA_STATUS         "status"         /* DELIVER_* below */
#define DA_DSN            "dsn"            /* "2.0.0", "4.2.2", "5.1.1" */
#define DA_REASON         "reason"         /* human text for log and DSN */
#define DA_DEST_STATUS    "dest_status"    /* optional, once: "ok"/"dead" */

#define DELIVER_OK     0
#define DELIVER_DEFER  4
#define DELIVER_BOUNCE 5

#define DELIVER_REQUEST_DELIVER "deliver"

/* recipients per request: 3 reply attributes each fit ATTR_MAX_COUNT */
#define DELIVER_MAX_RCPTS 64

#endif
