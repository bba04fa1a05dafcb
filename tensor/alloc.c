/* tensor/alloc.c — the allocator hook and the arena.
 *
 * Every byte the library takes goes through one hook, so a test can count allocations
 * and prove that a steady-state training step makes none. The arena is a bump
 * allocator over a list of chunks; tg_arena_reset keeps the memory and, if a step
 * needed more than one chunk, replaces them by one chunk as large as the peak, so the
 * next identical step is served from a single chunk without calling the hook. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static void *default_alloc(size_t size, size_t align, void *user)
{
    (void)user;
    if (align < sizeof(void *))
        align = sizeof(void *);
    if (size > SIZE_MAX - align)
        return NULL;
    size = (size + align - 1) / align * align; /* aligned_alloc wants a multiple */
    return aligned_alloc(align, size ? size : align);
}

static void default_free(void *p, void *user)
{
    (void)user;
    free(p);
}

static tg_allocator hook = {default_alloc, default_free, NULL};

void tg_set_allocator(const tg_allocator *a)
{
    if (a && a->alloc && a->free)
        hook = *a;
    else
        hook = (tg_allocator){default_alloc, default_free, NULL};
}

void *tg__alloc(size_t size, size_t align)
{
    void *p = hook.alloc(size, align, hook.user);
    if (!p)
        tg_set_error(TG_ERR_NOMEM, "tapegrad: out of memory allocating %zu bytes", size);
    return p;
}

void tg__free(void *p)
{
    if (p)
        hook.free(p, hook.user);
}

void *tg_mem_alloc(size_t size, size_t align) { return tg__alloc(size, align); }
void tg_mem_free(void *p) { tg__free(p); }

/* ------------------------------------------------------------------ arena */

typedef struct chunk {
    struct chunk *next;
    size_t size; /* usable bytes after the header */
    size_t used;
} chunk;

#define CHUNK_HEADER 64 /* keeps the usable part 64-byte aligned */
#define DEFAULT_CHUNK ((size_t)1 << 20)

struct tg_arena {
    chunk *head; /* the chunk being filled; older ones follow */
    size_t chunk_bytes;
    size_t used, peak, capacity;
    size_t taken, taken_peak; /* as used and peak, with alignment padding: sizes a merge */
};

/* quiet: on failure record no error (tg_arena_reset must not disturb the caller's) */
static chunk *chunk_new(size_t size, bool quiet)
{
    if (size > SIZE_MAX - CHUNK_HEADER) {
        if (!quiet)
            tg_set_error(TG_ERR_NOMEM, "tg_arena_alloc: %zu bytes is more than can be allocated", size);
        return NULL;
    }
    chunk *c = quiet ? hook.alloc(CHUNK_HEADER + size, 64, hook.user) : tg__alloc(CHUNK_HEADER + size, 64);
    if (c) {
        c->next = NULL;
        c->size = size;
        c->used = 0;
    }
    return c;
}

tg_arena *tg_arena_new(size_t chunk_bytes)
{
    tg_arena *ar = tg__alloc(sizeof *ar, _Alignof(tg_arena));
    if (!ar)
        return NULL;
    memset(ar, 0, sizeof *ar);
    ar->chunk_bytes = chunk_bytes ? chunk_bytes : DEFAULT_CHUNK;
    return ar;
}

static void free_chunks(chunk *c)
{
    while (c) {
        chunk *next = c->next;
        tg__free(c);
        c = next;
    }
}

void tg_arena_free(tg_arena *ar)
{
    if (!ar)
        return;
    free_chunks(ar->head);
    tg__free(ar);
}

void tg_arena_reset(tg_arena *ar)
{
    if (!ar)
        return;
    if (ar->head && ar->head->next) {
        /* More than one chunk: merge into one that holds the whole peak. If that
         * allocation fails, keep the old chunks; the arena still works. */
        size_t want = ar->taken_peak + ar->taken_peak / 8;
        chunk *merged = chunk_new(want < ar->taken_peak ? ar->taken_peak : want, true);
        if (merged) {
            free_chunks(ar->head);
            ar->head = merged;
            ar->capacity = merged->size;
        }
    }
    for (chunk *c = ar->head; c; c = c->next)
        c->used = 0;
    ar->used = 0;
    ar->taken = 0;
}

void *tg_arena_alloc(tg_arena *ar, size_t size, size_t align)
{
    if (align < 16)
        align = 16;
    if (align > 64) {
        tg_set_error(TG_ERR_ARG, "tg_arena_alloc: alignment %zu is above 64", align);
        return NULL;
    }
    if (align & (align - 1)) {
        tg_set_error(TG_ERR_ARG, "tg_arena_alloc: alignment %zu is not a power of two", align);
        return NULL;
    }
    /* chunks after head are earlier ones (full, or reused after a reset): try them
     * in order by walking from the head, which is the newest */
    for (chunk *c = ar->head; c; c = c->next) {
        size_t start = (c->used + align - 1) & ~(align - 1);
        if (start <= c->size && size <= c->size - start) {
            ar->taken += start - c->used + size;
            if (ar->taken > ar->taken_peak)
                ar->taken_peak = ar->taken;
            c->used = start + size;
            ar->used += size;
            if (ar->used > ar->peak)
                ar->peak = ar->used;
            return (char *)c + CHUNK_HEADER + start;
        }
    }
    size_t want = ar->chunk_bytes;
    if (ar->capacity > want)
        want = ar->capacity; /* grow geometrically */
    if (size > want)
        want = size;
    chunk *c = chunk_new(want, false);
    if (!c)
        return NULL;
    c->next = ar->head;
    ar->head = c;
    ar->capacity += c->size;
    c->used = size;
    ar->taken += size;
    if (ar->taken > ar->taken_peak)
        ar->taken_peak = ar->taken;
    ar->used += size;
    if (ar->used > ar->peak)
        ar->peak = ar->used;
    return (char *)c + CHUNK_HEADER;
}

size_t tg_arena_used(const tg_arena *ar) { return ar ? ar->used : 0; }
size_t tg_arena_capacity(const tg_arena *ar) { return ar ? ar->capacity : 0; }
size_t tg_arena_peak(const tg_arena *ar) { return ar ? ar->peak : 0; }
