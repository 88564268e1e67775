/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ksyms.h - kernel helpers lpshim needs but the kernel does not export
 *
 * They are resolved once, at load, through kallsyms_lookup_name (itself found with a kprobe).
 * lpshim refuses to load when one is missing rather than run without it.
 */
#ifndef _LPSHIM_KSYMS_H
#define _LPSHIM_KSYMS_H

int lpshim_ksyms_init(void);

/* Address of @name in vmlinux or a loaded module, 0 when there is none. */
unsigned long lpshim_lookup_name(const char *name);

#endif /* _LPSHIM_KSYMS_H */
