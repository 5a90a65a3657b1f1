#!/bin/sh
# Smallest guest test: proves userland (glibc-static busybox) runs.
echo "hello from $(uname -s) $(uname -r) on $(uname -m)"
echo "$((6 * 7))" | grep -q 42 && echo "LODGE-ARITH-OK"
