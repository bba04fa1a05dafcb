/* tensor/alloc.c — the allocator hook and the arena.
 *
 * Every byte the library takes goes through one hook, so a test can count allocations
 * and prove that a steady-state training step makes none. The arena is a bump
 * allocator over a list of chunks; tg_arena_reset keeps the memory and, if a step
 * needed more than one chunk, replaces them by one chunk as large as the peak, so the
 * next identical step is served from a single chunk without calling the hook. Large
 * blocks are allocations of their own, so that they can be given back one by one before
 * the reset (a gradient once it is used) and reused by the next large request. */
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

/* A large block: its own allocation, kept across resets and reused by size. */
typedef struct large {
    void *p;
    size_t size;
    uint64_t serial; /* when it was last taken (the arena's counter); 0: free */
    bool taken_this_round; /* since the last reset */
} large;

struct tg_arena {
    chunk *head; /* the chunk being filled; older ones follow */
    size_t chunk_bytes;
    size_t used, peak, capacity;
    size_t taken, taken_peak; /* as used and peak, with alignment padding: sizes a merge */
    large *large;             /* tg__alloc'd array of nlarge (capacity cap_large) */
    int nlarge, cap_large;
    uint64_t serial;          /* counts large blocks taken; tg_arena_mark reads it */
};

/* quiet: on failure record no error (tg_arena_reset must not disturb the caller's) */
static chunk *chunk_new(size_t size, bool quiet)
{
    if (size > SIZE_MAX - CHUNK_HEADER) {
        if (!quiet)
            tg_set_error_in(TG_ERR_NOMEM, "tg_arena_alloc", "%zu bytes is more than can be allocated", size);
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
    for (int i = 0; i < ar->nlarge; i++)
        tg__free(ar->large[i].p);
    tg__free(ar->large);
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
        }
    }
    for (chunk *c = ar->head; c; c = c->next)
        c->used = 0;
    /* Blocks the step since the last reset did not take are freed: a repeated step takes
     * the same blocks and keeps them all, while blocks of sizes a program no longer
     * uses (a bigger batch once) do not pile up. */
    int kept = 0;
    for (int i = 0; i < ar->nlarge; i++) {
        large b = ar->large[i];
        if (!b.taken_this_round) {
            tg__free(b.p);
            continue;
        }
        b.serial = 0;
        b.taken_this_round = false;
        ar->large[kept++] = b;
    }
    ar->nlarge = kept;
    ar->capacity = 0;
    for (chunk *c = ar->head; c; c = c->next)
        ar->capacity += c->size;
    for (int i = 0; i < ar->nlarge; i++)
        ar->capacity += ar->large[i].size;
    ar->used = 0;
    ar->taken = 0;
}

/* ------------------------------------------------------------------ large blocks */

static void count_used(tg_arena *ar, size_t size)
{
    ar->used += size;
    if (ar->used > ar->peak)
        ar->peak = ar->used;
}

/* The smallest free block that holds size and wastes at most as much again, or a new
 * one. Identical steps take identical blocks, so a repeated step allocates nothing. */
static void *large_alloc(tg_arena *ar, size_t size)
{
    if (size > SIZE_MAX - CHUNK_HEADER) {
        tg_set_error_in(TG_ERR_NOMEM, "tg_arena_alloc", "%zu bytes is more than can be allocated", size);
        return NULL;
    }
    int best = -1;
    for (int i = 0; i < ar->nlarge; i++) {
        const large *b = &ar->large[i];
        if (!b->serial && b->size >= size && b->size / 2 <= size &&
            (best < 0 || b->size < ar->large[best].size))
            best = i;
    }
    if (best < 0) {
        if (ar->nlarge == ar->cap_large) {
            int cap = ar->cap_large ? 2 * ar->cap_large : 64;
            large *grown = tg__alloc((size_t)cap * sizeof *grown, _Alignof(large));
            if (!grown)
                return NULL;
            if (ar->nlarge)
                memcpy(grown, ar->large, (size_t)ar->nlarge * sizeof *grown);
            tg__free(ar->large);
            ar->large = grown;
            ar->cap_large = cap;
        }
        void *p = tg__alloc(size, 64);
        if (!p)
            return NULL;
        best = ar->nlarge++;
        ar->large[best] = (large){.p = p, .size = size};
        ar->capacity += size;
    }
    ar->large[best].serial = ++ar->serial;
    ar->large[best].taken_this_round = true;
    count_used(ar, ar->large[best].size);
    return ar->large[best].p;
}

static large *find_large(const tg_arena *ar, const void *p)
{
    for (int i = 0; ar && p && i < ar->nlarge; i++)
        if (ar->large[i].p == p)
            return &ar->large[i];
    return NULL;
}

static void give_back(tg_arena *ar, large *b)
{
    if (b && b->serial) {
        b->serial = 0;
        ar->used -= b->size;
    }
}

void tg_arena_release(tg_arena *ar, const void *block) { give_back(ar, find_large(ar, block)); }

void tg_arena_release_tensor(tg_arena *ar, const tg_tensor *t)
{
    if (t && t->arena == ar)
        tg_arena_release(ar, t->storage);
}

uint64_t tg_arena_mark(const tg_arena *ar) { return ar ? ar->serial : 0; }

void tg_arena_release_since(tg_arena *ar, uint64_t mark, const void *const *keep, int nkeep)
{
    for (int i = 0; ar && i < ar->nlarge; i++) {
        large *b = &ar->large[i];
        if (b->serial <= mark)
            continue;
        bool kept = false;
        for (int k = 0; k < nkeep && !kept; k++)
            kept = keep[k] == b->p;
        if (!kept)
            give_back(ar, b);
    }
}

bool tg_arena_taken_since(const tg_arena *ar, uint64_t mark, const void *block)
{
    const large *b = find_large(ar, block);
    return b && b->serial > mark;
}

void *tg_arena_alloc(tg_arena *ar, size_t size, size_t align)
{
    if (align < 16)
        align = 16;
    if (align > 64) {
        tg_set_error_in(TG_ERR_ARG, "tg_arena_alloc", "alignment %zu is above 64", align);
        return NULL;
    }
    if (align & (align - 1)) {
        tg_set_error_in(TG_ERR_ARG, "tg_arena_alloc", "alignment %zu is not a power of two", align);
        return NULL;
    }
    if (size >= TG_ARENA_LARGE)
        return large_alloc(ar, size);
    /* chunks after head are earlier ones (full, or reused after a reset): try them
     * in order by walking from the head, which is the newest */
    for (chunk *c = ar->head; c; c = c->next) {
        size_t start = (c->used + align - 1) & ~(align - 1);
        if (start <= c->size && size <= c->size - start) {
            ar->taken += start - c->used + size;
            if (ar->taken > ar->taken_peak)
                ar->taken_peak = ar->taken;
            c->used = start + size;
            count_used(ar, size);
            return (char *)c + CHUNK_HEADER + start;
        }
    }
    size_t want = ar->chunk_bytes;
    size_t chunks = 0; /* the chunks' bytes, without the large blocks */
    for (chunk *h = ar->head; h; h = h->next)
        chunks += h->size;
    if (chunks > want)
        want = chunks; /* grow geometrically */
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
    count_used(ar, size);
    return (char *)c + CHUNK_HEADER;
}

size_t tg_arena_used(const tg_arena *ar) { return ar ? ar->used : 0; }
size_t tg_arena_capacity(const tg_arena *ar) { return ar ? ar->capacity : 0; }
size_t tg_arena_peak(const tg_arena *ar) { return ar ? ar->peak : 0; }
