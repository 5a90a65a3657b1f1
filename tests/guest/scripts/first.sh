#!/bin/sh
# GRUB menu test (tests/firmware/grub_keys.sh): the first menu entry booted.
echo "LODGE-ENTRY=first cmdline: $(cat /proc/cmdline)"
