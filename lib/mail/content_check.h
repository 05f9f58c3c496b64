/*
 * content_check - the actions of header_checks and body_checks (Postfix
 * header_checks(5)): parses a table result such as "REJECT no spam"
 * into an action and its text. Applying the action is cleanup's job.
 *
 *   REJECT [text]    the message fails: "550 5.7.1 text" (the text may
 *                    start with its own enhanced status code, 4.x.x or
 *                    5.x.x; 4.x.x makes the reply 450)
 *   DISCARD [text]   claim success, throw the message away
 *   HOLD [text]      the message goes to the hold queue
 *   WARN [text]      log only
 *   IGNORE           drop this header / body line
 *   REPLACE text     replace this header / body line by text
 *   PREPEND text     insert text before this header / body line
 *   DUNNO, OK        nothing (and no further rule of this table)
 * Action names are case-insensitive; the text is what follows the name,
 * trimmed. A result that is none of these, or REPLACE/PREPEND without
 * text, is an error the caller warns about and otherwise ignores (as
 * Postfix does).
 */
#ifndef TERN_CONTENT_CHECK_H
#define TERN_CONTENT_CHECK_H

enum content_action {
    CC_DUNNO,
    CC_REJECT,
    CC_DISCARD,
    CC_HOLD,
    CC_WARN,
    CC_IGNORE,
    CC_REPLACE,
    CC_PREPEND,
};

struct content_verdict {
    enum content_action action;
    const char *text;       /* into the parsed value; "" when none */
    char dsn[16];           /* CC_REJECT: "5.7.1" or the text's own code */
    int code;               /* CC_REJECT: 550, or 450 for a 4.x.x code */
};

/* 0 with *v filled (v->text points into value, which the caller keeps
   unchanged while it uses v), -1 with *error_r (a static string) */
int content_check_parse(const char *value, struct content_verdict *v,
                        const char **error_r);
/* the action's name as logged by Postfix ("reject", "discard", ...) */
const char *content_check_name(enum content_action a);

#endif
