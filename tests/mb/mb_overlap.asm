; A hand-built ELF32 multiboot image whose two load segments overlap
; (0x100000-0x100fff and 0x100800-0x100fff): the loader must refuse it.
bits 32
org 0
ehdr:
    db 0x7f, "ELF", 1, 1, 1, 0          ; ELFCLASS32, little endian, version 1
    times 8 db 0
    dw 2                                ; ET_EXEC
    dw 3                                ; EM_386
    dd 1
    dd 0x100000                         ; e_entry
    dd phdrs - ehdr                     ; e_phoff
    dd 0                                ; e_shoff
    dd 0                                ; e_flags
    dw 52, 32, 2, 0, 0, 0               ; ehsize, phentsize, phnum, shentsize, shnum, shstrndx
phdrs:
    ;  type offset  vaddr     paddr     filesz  memsz   flags align
    dd 1,   0x1000, 0x100000, 0x100000, 0x1000, 0x1000, 5,    0x1000
    dd 1,   0x1000, 0x100800, 0x100800, 0x800,  0x800,  6,    0x1000
    times 0x1000 - ($ - $$) db 0
    dd 0x1BADB002, 0x3, -(0x1BADB002 + 0x3)
    times 0x2000 - ($ - $$) db 0xf4
