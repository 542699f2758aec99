#ifndef KERNEL_MM_H
#define KERNEL_MM_H
struct boot_info;
/* Hand the firmware's memory map to strata (kernel/mm_glue.c). */
void mm_init(const struct boot_info *bi);
/* mm.fault=... given: injection starts now (before: paused for the boot). */
void mm_fault_arm(void);
#endif
