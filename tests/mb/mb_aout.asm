; Multiboot test kernel, flat binary with the a.out kludge (flag bit 16): the header's
; address fields tell the loader where the image and its bss go. Reports through the
; debug port, then exits with test-exit value 0x2a (status 85).
; Assembly-time knobs for the malformed variants the CLI test uses:
;   LOAD=addr      load (and link) address           (default 1 MiB)
;   BSS_END=addr   bss_end_addr                       (default: just past our bss)
;   EXTRA_FLAGS=n  OR-ed into the header flags        (default 0)
;   BAD_CHECKSUM   make the checksum wrong by one
%ifndef LOAD
%define LOAD 0x100000
%endif
%ifndef EXTRA_FLAGS
%define EXTRA_FLAGS 0
%endif
%define EXIT_VALUE 0x2a
%define MB_FLAGS (0x10003 | EXTRA_FLAGS)
%ifdef BAD_CHECKSUM
%define MB_CHECKSUM (-(0x1BADB002 + MB_FLAGS) + 1)
%else
%define MB_CHECKSUM (-(0x1BADB002 + MB_FLAGS))
%endif

bits 32
org LOAD
mb_header:
    dd 0x1BADB002
    dd MB_FLAGS
    dd MB_CHECKSUM
    dd mb_header                ; header_addr
    dd LOAD                     ; load_addr
    dd load_end                 ; load_end_addr
%ifdef BSS_END
    dd BSS_END
%else
    dd bss_end                  ; bss_end_addr
%endif
    dd start                    ; entry_addr
start:
    jmp report
%include "report.inc"
align 4
load_end:

absolute load_end
alignb 16
entry_flags: resd 1
stack: resb 4096
stack_top:
bss_end:
