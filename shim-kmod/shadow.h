/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * shadow.h - shadow variables, lpshim's side (the patch-module API is in <lpshim/lpshim.h>)
 */
#ifndef _LPSHIM_SHADOW_H
#define _LPSHIM_SHADOW_H

/*
 * Free every shadow variable still attached at lpshim's unload, with a warning: each is memory
 * a patch module forgot to free and would otherwise leak. Call from lpshim's module exit, when
 * no patch module (they all use lpshim's exports) can be loaded any more.
 */
void lpshim_shadow_exit(void);

#endif /* _LPSHIM_SHADOW_H */
