#!/bin/bash
# Probe for bench/RESULTS.md: one load against one server, the Maildirs emptied
# 1 s ("fresh") or 65 s ("aged") before it starts. Run as root, with the kit's
# instances set up (../shared/bench/mta_{postfix,tern}.sh).
# usage: aged.sh postfix|tern d|r5 aged|fresh
S=$1; L=$2; A=$3
case $S in tern) PORT=2528; OTHER=postfix;; postfix) PORT=3525; OTHER=tern;; esac
export POSTFIX_PORT=3525 TERN_BUILD=/work/main/build
/work/shared/bench/mta_$OTHER.sh stop >/dev/null 2>&1
/work/shared/bench/mta_$S.sh start >/dev/null 2>&1
US="benchuser"; [ $L = r5 ] && US="benchuser 2benchuser 3benchuser 4benchuser 5benchuser"
for u in $US; do rm -rf /home/$u/Maildir/new/*; done
sync
if [ $A = aged ]; then sleep 65; else sleep 1; fi
cnt() { n=0; for u in $US; do n=$((n+$(ls /home/$u/Maildir/new | wc -l))); done; echo $n; }
if [ $L = r5 ]; then N=1000; R=5; X=""; else N=5000; R=1; X="-d"; fi
t0=$(date +%s.%N)
/usr/sbin/smtp-source -s 20 -m $N -r $R -l 5120 $X -f bench@localhost -t benchuser@localhost 127.0.0.1:$PORT
t1=$(date +%s.%N)
while [ $(cnt) -lt $((N*R)) ]; do sleep 0.05; done
t2=$(date +%s.%N)
echo "$S $L $A ingest $(echo "$N/($t1-$t0)" | bc) msg/s  deliveries $(echo "$R*$N/($t2-$t0)" | bc) /s"
/work/shared/bench/mta_$S.sh stop >/dev/null 2>&1
