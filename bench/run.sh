#!/bin/sh
# bench/run.sh - benchmarks, side by side with Postfix/Dovecot.
# Not written yet: the benchmark issue adds the SMTP throughput and IMAP
# scripts and bench/RESULTS.md. This script exists so `make bench` works.
echo "bench: no benchmarks yet (see bench/README.md)"
