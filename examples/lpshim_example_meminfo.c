// SPDX-License-Identifier: GPL-2.0-only
/*
 * lpshim_example_meminfo - a real function's replacement, with the static and unexported
 * functions and data it uses (kpatch's classic meminfo case)
 *
 * Replaces vmlinux's static meminfo_proc_show() (fs/proc/meminfo.c), the function behind
 * /proc/meminfo, with a copy that changes two lines:
 *
 *   - "VmallocChunk:" reads "VMALLOCCHUNK:", kpatch's classic visible change;
 *   - "SwapTotal:" shows total_swap_pages, the swap in use, without the area that a running
 *     swapoff is removing (si_swapinfo() counts it until swapoff completes).
 *
 *	$ insmod lpshim_example_meminfo.ko
 *	$ grep -E '^(SwapTotal|VMALLOCCHUNK)' /proc/meminfo
 *	SwapTotal:             0 kB
 *	VMALLOCCHUNK:          0 kB
 *
 * A replacement is a copy of the function as the target kernel's source has it, fixed. Here
 * the copy calls functions the kernel does not export (si_swapinfo(), hugetlb_report_meminfo(),
 * arch_report_meminfo(), vmalloc_nr_pages(), ...) and reads data it does not export
 * (total_swap_pages, num_poisoned_pages, ...). Their headers declare them, so the source just
 * uses them; lpshim-klp-convert turns every such reference into a livepatch relocation against
 * vmlinux (docs/klp-convert.md, which also says how this example was written).
 *
 * show_val_kb() is static in fs/proc/meminfo.c and, on Debian's 6.1 and 6.12, inlined into
 * meminfo_proc_show(): it is in no symbol table (not in /proc/kallsyms, not a FUNC in BTF), so
 * there is nothing to call, and the patch carries its own copy, as kpatch-build would.
 *
 * The function differs between the kernels; each part below follows fs/proc/meminfo.c of 6.1
 * or 6.12 line for line, and a kernel this file does not know is refused at build time.
 */
#include <linux/hugetlb.h>
#include <linux/memblock.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/mmzone.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/swap.h>
#include <linux/version.h>
#include <linux/vmalloc.h>
#include <linux/vmstat.h>
#ifdef CONFIG_CMA
#include <linux/cma.h>
#endif
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
#include <linux/zswap.h>
#endif
#include <asm/page.h>

#include <lpshim/lpshim.h>

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 1, 0) || \
	(LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0) && \
	 LINUX_VERSION_CODE < KERNEL_VERSION(6, 12, 0)) || \
	LINUX_VERSION_CODE >= KERNEL_VERSION(6, 13, 0)
#error "meminfo_proc_show() of this kernel is not copied here: copy it from its fs/proc/meminfo.c"
#endif

/* The patch's copy of the static show_val_kb(), which the target kernel inlined. */
static void lpshim_example_show_val_kb(struct seq_file *m, const char *s, unsigned long num)
{
	seq_put_decimal_ull_width(m, s, num << (PAGE_SHIFT - 10), 8);
	seq_write(m, " kB\n", 4);
}

static int lpshim_example_meminfo_proc_show(struct seq_file *m, void *v)
{
	struct sysinfo i;
	unsigned long committed;
	long cached;
	long available;
	unsigned long pages[NR_LRU_LISTS];
	unsigned long sreclaimable, sunreclaim;
	int lru;

	si_meminfo(&i);
	si_swapinfo(&i);
	committed = vm_memory_committed();

	cached = global_node_page_state(NR_FILE_PAGES) -
			total_swapcache_pages() - i.bufferram;
	if (cached < 0)
		cached = 0;

	for (lru = LRU_BASE; lru < NR_LRU_LISTS; lru++)
		pages[lru] = global_node_page_state(NR_LRU_BASE + lru);

	available = si_mem_available();
	sreclaimable = global_node_page_state_pages(NR_SLAB_RECLAIMABLE_B);
	sunreclaim = global_node_page_state_pages(NR_SLAB_UNRECLAIMABLE_B);

	lpshim_example_show_val_kb(m, "MemTotal:       ", i.totalram);
	lpshim_example_show_val_kb(m, "MemFree:        ", i.freeram);
	lpshim_example_show_val_kb(m, "MemAvailable:   ", available);
	lpshim_example_show_val_kb(m, "Buffers:        ", i.bufferram);
	lpshim_example_show_val_kb(m, "Cached:         ", cached);
	lpshim_example_show_val_kb(m, "SwapCached:     ", total_swapcache_pages());
	lpshim_example_show_val_kb(m, "Active:         ", pages[LRU_ACTIVE_ANON] +
						       pages[LRU_ACTIVE_FILE]);
	lpshim_example_show_val_kb(m, "Inactive:       ", pages[LRU_INACTIVE_ANON] +
						       pages[LRU_INACTIVE_FILE]);
	lpshim_example_show_val_kb(m, "Active(anon):   ", pages[LRU_ACTIVE_ANON]);
	lpshim_example_show_val_kb(m, "Inactive(anon): ", pages[LRU_INACTIVE_ANON]);
	lpshim_example_show_val_kb(m, "Active(file):   ", pages[LRU_ACTIVE_FILE]);
	lpshim_example_show_val_kb(m, "Inactive(file): ", pages[LRU_INACTIVE_FILE]);
	lpshim_example_show_val_kb(m, "Unevictable:    ", pages[LRU_UNEVICTABLE]);
	lpshim_example_show_val_kb(m, "Mlocked:        ", global_zone_page_state(NR_MLOCK));

#ifdef CONFIG_HIGHMEM
	lpshim_example_show_val_kb(m, "HighTotal:      ", i.totalhigh);
	lpshim_example_show_val_kb(m, "HighFree:       ", i.freehigh);
	lpshim_example_show_val_kb(m, "LowTotal:       ", i.totalram - i.totalhigh);
	lpshim_example_show_val_kb(m, "LowFree:        ", i.freeram - i.freehigh);
#endif

#ifndef CONFIG_MMU
	lpshim_example_show_val_kb(m, "MmapCopy:       ",
				   (unsigned long)atomic_long_read(&mmap_pages_allocated));
#endif

	/* The fix: the swap in use, without an area that swapoff is removing. */
	lpshim_example_show_val_kb(m, "SwapTotal:      ", (unsigned long)total_swap_pages);
	lpshim_example_show_val_kb(m, "SwapFree:       ", i.freeswap);
#ifdef CONFIG_ZSWAP
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
	lpshim_example_show_val_kb(m, "Zswap:          ", zswap_total_pages());
#else
	seq_printf(m,  "Zswap:          %8lu kB\n",
		   (unsigned long)(zswap_pool_total_size >> 10));
#endif
	seq_printf(m,  "Zswapped:       %8lu kB\n",
		   (unsigned long)atomic_read(&zswap_stored_pages) <<
		   (PAGE_SHIFT - 10));
#endif
	lpshim_example_show_val_kb(m, "Dirty:          ",
				   global_node_page_state(NR_FILE_DIRTY));
	lpshim_example_show_val_kb(m, "Writeback:      ",
				   global_node_page_state(NR_WRITEBACK));
	lpshim_example_show_val_kb(m, "AnonPages:      ",
				   global_node_page_state(NR_ANON_MAPPED));
	lpshim_example_show_val_kb(m, "Mapped:         ",
				   global_node_page_state(NR_FILE_MAPPED));
	lpshim_example_show_val_kb(m, "Shmem:          ", i.sharedram);
	lpshim_example_show_val_kb(m, "KReclaimable:   ", sreclaimable +
				   global_node_page_state(NR_KERNEL_MISC_RECLAIMABLE));
	lpshim_example_show_val_kb(m, "Slab:           ", sreclaimable + sunreclaim);
	lpshim_example_show_val_kb(m, "SReclaimable:   ", sreclaimable);
	lpshim_example_show_val_kb(m, "SUnreclaim:     ", sunreclaim);
	seq_printf(m, "KernelStack:    %8lu kB\n",
		   global_node_page_state(NR_KERNEL_STACK_KB));
#ifdef CONFIG_SHADOW_CALL_STACK
	seq_printf(m, "ShadowCallStack:%8lu kB\n",
		   global_node_page_state(NR_KERNEL_SCS_KB));
#endif
	lpshim_example_show_val_kb(m, "PageTables:     ",
				   global_node_page_state(NR_PAGETABLE));
	lpshim_example_show_val_kb(m, "SecPageTables:  ",
				   global_node_page_state(NR_SECONDARY_PAGETABLE));

	lpshim_example_show_val_kb(m, "NFS_Unstable:   ", 0);
	lpshim_example_show_val_kb(m, "Bounce:         ",
				   global_zone_page_state(NR_BOUNCE));
	lpshim_example_show_val_kb(m, "WritebackTmp:   ",
				   global_node_page_state(NR_WRITEBACK_TEMP));
	lpshim_example_show_val_kb(m, "CommitLimit:    ", vm_commit_limit());
	lpshim_example_show_val_kb(m, "Committed_AS:   ", committed);
	seq_printf(m, "VmallocTotal:   %8lu kB\n",
		   (unsigned long)VMALLOC_TOTAL >> 10);
	lpshim_example_show_val_kb(m, "VmallocUsed:    ", vmalloc_nr_pages());
	/* The visible change. */
	lpshim_example_show_val_kb(m, "VMALLOCCHUNK:   ", 0ul);
	lpshim_example_show_val_kb(m, "Percpu:         ", pcpu_nr_pages());

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
	memtest_report_meminfo(m);
#endif

#ifdef CONFIG_MEMORY_FAILURE
	seq_printf(m, "HardwareCorrupted: %5lu kB\n",
		   atomic_long_read(&num_poisoned_pages) << (PAGE_SHIFT - 10));
#endif

#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	lpshim_example_show_val_kb(m, "AnonHugePages:  ",
				   global_node_page_state(NR_ANON_THPS));
	lpshim_example_show_val_kb(m, "ShmemHugePages: ",
				   global_node_page_state(NR_SHMEM_THPS));
	lpshim_example_show_val_kb(m, "ShmemPmdMapped: ",
				   global_node_page_state(NR_SHMEM_PMDMAPPED));
	lpshim_example_show_val_kb(m, "FileHugePages:  ",
				   global_node_page_state(NR_FILE_THPS));
	lpshim_example_show_val_kb(m, "FilePmdMapped:  ",
				   global_node_page_state(NR_FILE_PMDMAPPED));
#endif

#ifdef CONFIG_CMA
	lpshim_example_show_val_kb(m, "CmaTotal:       ", totalcma_pages);
	lpshim_example_show_val_kb(m, "CmaFree:        ",
				   global_zone_page_state(NR_FREE_CMA_PAGES));
#endif

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0) && defined(CONFIG_UNACCEPTED_MEMORY)
	lpshim_example_show_val_kb(m, "Unaccepted:     ",
				   global_zone_page_state(NR_UNACCEPTED));
#endif

	hugetlb_report_meminfo(m);

	arch_report_meminfo(m);

	return 0;
}

static struct lpshim_func funcs[] = {
	{
		.old_name = "meminfo_proc_show",
		.new_func = lpshim_example_meminfo_proc_show,
	},
	{ }
};

static struct lpshim_object objs[] = {
	{
		.funcs = funcs,
	},
	{ }
};

static struct lpshim_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init lpshim_example_meminfo_init(void)
{
	return lpshim_enable_patch(&patch);
}

static void __exit lpshim_example_meminfo_exit(void)
{
}

module_init(lpshim_example_meminfo_init);
module_exit(lpshim_example_meminfo_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpshim example: /proc/meminfo with a changed line (kpatch's meminfo case)");
LPSHIM_PATCH_MODULE();
