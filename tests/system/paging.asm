; System test: 32-bit paging (4 KiB and 4 MiB pages): #PF error codes and CR2 for
; not-present, write to read-only with CR0.WP 0/1 at CPL0 and CPL3, user access to a
; supervisor page, a reserved bit in a 4 MiB PDE; accessed/dirty bits; INVLPG and CR3
; reload picking up a changed PTE.
%include "sys.inc"

%define PD SCRATCH
%define PT0 (SCRATCH + 0x1000)          ; identity 0..4 MiB, user, writable
%define PT1 (SCRATCH + 0x2000)          ; the test pages at 0x400000
%define PAGE_A 0x240000                 ; physical data pages with markers
%define PAGE_B 0x241000
%define PAGE_C 0x242000
%define PAGE_D 0x243000

%macro SHOW 1                           ; print "[addr]=value" of a read through paging
    PRINT "read "
    HEX32 %1
    PRINT " = "
    HEX32 [%1]
    call newline
%endmacro

test_main:
    PRINTLN "paging 32-bit"
    mov dword [PAGE_A], 0x11111111
    mov dword [PAGE_B], 0x22222222
    mov dword [PAGE_C], 0x33333333
    mov dword [PAGE_D], 0x44444444
    mov edi, PD
    mov ecx, 3 * 1024
    xor eax, eax
    rep stosd
    mov edi, PT0
    mov eax, 0x7
.ident:
    stosd
    add eax, 0x1000
    cmp edi, PT0 + 0x1000
    jb .ident
    mov dword [PD], PT0 | 7
    mov dword [PD + 4], PT1 | 7
    mov dword [PT1], PAGE_A | 7         ; 0x400000: user, writable
    mov dword [PT1 + 4], 0              ; 0x401000: not present
    mov dword [PT1 + 8], PAGE_B | 5     ; 0x402000: user, read-only
    mov dword [PT1 + 12], PAGE_C | 3    ; 0x403000: supervisor, writable
    mov eax, PD
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    and eax, ~0x10000                   ; WP=0 first
    mov cr0, eax

    SHOW 0x400000
    SHOW 0x402000
    SHOW 0x403000
    PRINT "PDE1 and PTE 0x400000 flags after the read: "
    mov eax, [PD + 4]
    and eax, 0xfff
    HEX32 eax
    PRINT " "
    mov eax, [PT1]
    and eax, 0xfff
    HEX32 eax
    call newline

    PRINT "read not-present: "
    TRY .f1
    EXPECT_AT .a1
.a1:
    mov eax, [0x401234]
    PRINTLN "no fault"
.f1:
    PRINT "write not-present: "
    TRY .f2
    EXPECT_AT .a2
.a2:
    mov dword [0x401ffc], 1
    PRINTLN "no fault"
.f2:
    PRINT "fetch not-present: "
    TRY .f3
    EXPECT_AT 0x401000
    call 0x401000
    PRINTLN "no fault"
.f3:
    PRINT "CPL0 write read-only, WP=0: "
    TRY .f4
    mov dword [0x402004], 0x55
    mov eax, [PAGE_B + 4]
    call puthex
    call newline
.f4:
    mov eax, cr0
    or eax, 0x10000
    mov cr0, eax
    PRINT "CPL0 write read-only, WP=1: "
    TRY .f5
    EXPECT_AT .a5
.a5:
    mov dword [0x402008], 0x66
    PRINTLN "no fault"
.f5:
    PRINT "CPL3 read user page: "
    TRY .f6
    RING3 0
    mov eax, [0x400000]
    call puthex
    call newline
    EXPECT_AT .r3back
.r3back:
    int3                                ; DPL0 gate: #GP(3*8+2) takes us back to ring 0
.f6:
    PRINT "CPL3 read supervisor page: "
    TRY .f7
    RING3 0
    EXPECT_AT .a7
.a7:
    mov eax, [0x403010]
    PRINTLN "no fault"
.f7:
    PRINT "CPL3 write read-only page: "
    TRY .f8
    RING3 0
    EXPECT_AT .a8
.a8:
    mov dword [0x402010], 1
    PRINTLN "no fault"
.f8:
    PRINT "CPL3 write not-present page: "
    TRY .f9
    RING3 0
    EXPECT_AT .a9
.a9:
    mov dword [0x401010], 1
    PRINTLN "no fault"
.f9:
    PRINT "CPL3 read-only page via supervisor PDE: "
    and dword [PD + 4], ~4
    invlpg [0x400000]
    TRY .f10
    RING3 0
    EXPECT_AT .a10
.a10:
    mov eax, [0x400020]
    PRINTLN "no fault"
.f10:
    or dword [PD + 4], 4
    invlpg [0x400000]

    ; accessed and dirty bits
    mov dword [PT1], PAGE_A | 7
    and dword [PD + 4], ~0x60
    invlpg [0x400000]
    mov eax, [0x400000]
    PRINT "after read: PDE1 "
    mov eax, [PD + 4]
    and eax, 0xfff
    HEX32 eax
    PRINT " PTE "
    mov eax, [PT1]
    and eax, 0xfff
    HEX32 eax
    call newline
    mov dword [0x400100], 0x77
    PRINT "after write: PDE1 "
    mov eax, [PD + 4]
    and eax, 0xfff
    HEX32 eax
    PRINT " PTE "
    mov eax, [PT1]
    and eax, 0xfff
    HEX32 eax
    call newline

    ; INVLPG and CR3 reload
    mov dword [PT1], PAGE_D | 7
    invlpg [0x400000]
    PRINT "after INVLPG: "
    SHOW 0x400000
    mov dword [PT1], PAGE_A | 7
    mov eax, cr3
    mov cr3, eax
    PRINT "after CR3 reload: "
    SHOW 0x400000
    mov dword [PT1 + 4], PAGE_C | 3
    invlpg [0x401000]
    PRINT "not-present made present: "
    SHOW 0x401000

    ; 4 MiB pages
    mov eax, cr4
    or eax, 0x10                        ; PSE
    mov cr4, eax
    mov dword [PD + 8], 0x87            ; 0x800000 -> 0 (4 MiB, user, writable)
    mov dword [PD + 12], 0x87 | (1 << 21) ; bit 21 of a 4 MiB PDE is reserved
    PRINT "4 MiB page: "
    SHOW 0x800000 + PAGE_C
    PRINT "4 MiB PDE flags after the read: "
    mov eax, [PD + 8]
    and eax, 0xfff
    HEX32 eax
    call newline
    PRINT "reserved bit in a 4 MiB PDE: "
    TRY .f11
    EXPECT_AT .a11
.a11:
    mov eax, [0xc00040]
    PRINTLN "no fault"
.f11:
    PRINT "CR2 after the faults: "
    mov eax, cr2
    HEX32 eax
    call newline
    mov eax, cr0
    and eax, ~0x80000000
    mov cr0, eax
    ret
