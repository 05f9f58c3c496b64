/*
 * fuzz_queue_file - libFuzzer harness for the queue file reader: the
 * input becomes a memfd and goes through queue_file_read(). Accepted
 * files must describe themselves consistently (offsets inside the file,
 * recipient type bytes where the reader says they are, DSN NOTIFY and
 * ORCPT values the writer would write).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mail/queue.h"
#include "mail/queue_reader.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    queue_msg_t m;
    const char *err = NULL;
    int fd = memfd_create("fuzz_queue_file", MFD_CLOEXEC);

    if (fd < 0)
        return 0;
    if (write_full(fd, data, size) < 0) {
        close(fd);
        return 0;
    }
    if (queue_file_read(fd, "0000000000z", &m, &err) == 0) {
        if (m.nrcpts == 0 || m.sender == NULL
            || (uint64_t)m.content_offset + m.content_len + 5 != size)
            abort();
        for (size_t i = 0; i < m.nrcpts; i++) {
            off_t o = m.rcpts[i].offset;
            char text[QREC_NOTIFY_TEXT_MAX];
            const char *d = m.rcpts[i].dsn_orcpt;

            if (o < 0 || (size_t)o >= size || data[o] != m.rcpts[i].status)
                abort();
            /* the DSN records the reader accepted obey the writer's rules */
            if (m.rcpts[i].dsn_notify != 0
                && queue_notify_format(m.rcpts[i].dsn_notify, text,
                                       sizeof(text)) < 0)
                abort();
            if (d != NULL && !queue_rec_dsn_valid(QREC_DSN_ORCPT, d, strlen(d)))
                abort();
        }
        queue_msg_free(&m);
    } else if (err == NULL || m.nrcpts != 0 || m.sender != NULL) {
        abort();
    }
    close(fd);
    return 0;
}
