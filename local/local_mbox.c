/*
 * local_mbox - mbox-format delivery to a file (local.h).
 */
#include "mail/deliver.h"
#include "local.h"

void local_file(const struct local_request *r, const char *path, uid_t uid,
                gid_t gid, struct local_result *res)
{
    (void)r;
    (void)uid;
    (void)gid;
    local_result_set(res, DELIVER_DEFER, "4.3.0",
                     "delivery to file %.100s is not supported yet", path);
}
