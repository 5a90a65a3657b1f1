#!/bin/sh
# GRUB menu test (tests/firmware/grub_keys.sh): the second menu entry booted.
echo "LODGE-ENTRY=second cmdline: $(cat /proc/cmdline)"
