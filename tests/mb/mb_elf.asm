; Multiboot test kernel, ELF32 flavour (nasm -f elf32, ld -m elf_i386 -T mb_elf.ld):
; no address fields, so the loader must place it by its program headers. Reports
; through the debug port, then exits with test-exit value 0x10 (status 33).
%define EXIT_VALUE 0x10
%define MB_FLAGS 0x3                    ; page-align modules, memory information

section .text
global start
align 4
mb_header:
    dd 0x1BADB002
    dd MB_FLAGS
    dd -(0x1BADB002 + MB_FLAGS)
start:
    jmp report
%include "report.inc"

section .bss
alignb 16
entry_flags: resd 1
stack: resb 4096
stack_top:
