#!/bin/sh
# bochs-drm on Lodge's stdvga (issue 7): load the DRM chain in dependency order
# (modinfo depends: drm <- drm_kms_helper, ttm <- drm_ttm_helper <- drm_vram_helper <- bochs),
# report the mode the driver picked, put text on the framebuffer console, then wait for the
# host to take its screendump (the host ends the VM).
# lodge.text_hold=N on the command line: stay in the VGA text mode N seconds first (a UI
# test looks at the text mode's thumbnail, and the soft CPU boots faster than it looks).
hold=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^lodge.text_hold=//p')
[ -n "$hold" ] && sleep "$hold"
lodge-insmod drm drm_kms_helper ttm drm_ttm_helper drm_vram_helper bochs || exit 1
i=0
while [ ! -e /sys/class/graphics/fb0/virtual_size ] && [ "$i" -lt 30 ]; do
    sleep 1
    i=$((i + 1))
done
echo "LODGE-FB-NAME=$(cat /sys/class/graphics/fb0/name 2>/dev/null)"
echo "LODGE-FB-SIZE=$(cat /sys/class/graphics/fb0/virtual_size 2>/dev/null)"
for i in 1 2 3 4 5 6 7 8; do
    echo "Lodge bochs-drm console line $i" >/dev/tty0
done
echo "LODGE-BOCHS-READY"
sleep 600
