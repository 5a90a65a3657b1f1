; Guest (c): PIO and MMIO of every size against the harness test device, which
; answers reads with TEST_PATTERN ^ offset (truncated to the access size) and logs
; writes. Each failed check exits with its own status; success exits with 0.
%include "rom.inc"
%include "lm_entry.inc"
%define MMIO  0xd0000
%define TPORT 0x510
%define PAT   0xf1e2d3c4b5a69788
%define PAT8(o)  ((PAT ^ (o)) & 0xff)
%define PAT16(o) ((PAT ^ (o)) & 0xffff)
%define PAT32(o) ((PAT ^ (o)) & 0xffffffff)

%macro CHECK 1
    je %%ok
    mov bl, %1
    jmp fail
%%ok:
%endmacro

bits 64
lm_main:
    ; MMIO writes, sizes 1/2/4/8
    mov byte [MMIO + 0x1], 0x11
    mov word [MMIO + 0x2], 0x2233
    mov dword [MMIO + 0x4], 0x44556677
    mov rax, 0x8899aabbccddeeff
    mov [MMIO + 0x8], rax
    ; MMIO reads
    mov al, [MMIO + 0x10]
    cmp al, PAT8(0x10)
    CHECK 10
    mov ax, [MMIO + 0x12]
    cmp ax, PAT16(0x12)
    CHECK 11
    mov eax, [MMIO + 0x14]
    cmp eax, PAT32(0x14)
    CHECK 12
    mov rax, [MMIO + 0x18]
    mov rcx, PAT ^ 0x18
    cmp rax, rcx
    CHECK 13
    ; PIO writes, sizes 1/2/4
    mov dx, TPORT + 1
    mov al, 0x5a
    out dx, al
    mov dx, TPORT + 2
    mov ax, 0x1234
    out dx, ax
    mov dx, TPORT + 4
    mov eax, 0xdeadbeef
    out dx, eax
    ; PIO reads
    mov dx, TPORT + 1
    in al, dx
    cmp al, PAT8(1)
    CHECK 20
    mov dx, TPORT + 2
    in ax, dx
    cmp ax, PAT16(2)
    CHECK 21
    mov dx, TPORT + 4
    in eax, dx
    cmp eax, PAT32(4)
    CHECK 22
    ; string PIO: 4 bytes out, 3 words in
    lea rsi, [rel sdata]
    mov dx, TPORT
    mov ecx, 4
    rep outsb
    mov edi, 0x8000
    mov dx, TPORT + 6
    mov ecx, 3
    rep insw
    cmp word [0x8000], PAT16(6)
    CHECK 23
    cmp word [0x8004], PAT16(6)
    CHECK 24
    EXIT 0
.halt:
    hlt
    jmp .halt
fail:
    mov dx, EXIT_PORT
    mov al, bl
    out dx, al
    jmp lm_main.halt
sdata: db 0xa1, 0xb2, 0xc3, 0xd4
ROM_END
