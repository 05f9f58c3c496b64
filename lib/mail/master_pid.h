/*
 * master_pid - the running master, as its pid file says: master holds an
 * exclusive flock on $queue_directory/pid/master.pid for as long as it
 * runs (master_pid_lock in master/master.c) and writes its PID there.
 * A lock that can be taken means nobody runs, whatever the file says
 * (a master killed with -9 leaves the file behind, never the lock).
 * Used by `master -t` and ternctl (status, stop, reload).
 *
 * Security: only reads; the file is opened O_NOFOLLOW|O_NONBLOCK and must
 * be a regular file (pid/ is root's in a root instance).
 */
#ifndef TERN_MASTER_PID_H
#define TERN_MASTER_PID_H

#define MASTER_PID_FILE "pid/master.pid"   /* under the queue directory */

/* 1: a master runs (*pid_r its PID, 0 when the file holds none yet),
   0: none runs (no file, or nobody holds the lock), -1: error (errno) */
int master_pid_running(const char *queue_dir, long *pid_r);

#endif
