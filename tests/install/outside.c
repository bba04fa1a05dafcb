/* A program outside the tree: it sees only the installed headers and pkg-config. */
#include <tapegrad.h>
#include <tapegrad/tensor_advanced.h> /* installed beside the others, not in the umbrella */

int main(void)
{
    tg_tensor *a = tg_tensor_arange(NULL, TG_F32, 1, 5, 1);
    tg_tensor *m = tg_tensor_reshape(NULL, a, TG_DIMS(2, 2));
    tg_tensor *s = tg_tensor_sum(NULL, m, 0, NULL, false);
    char shape[32];
    tg_arena *ar = tg_arena_new(0); /* a mark and a release of nothing: the header links */
    tg_arena_release_since(ar, tg_arena_mark(ar), NULL, 0);
    tg_arena_free(ar);
    if (!s) {
        fprintf(stderr, "outside: %s\n", tg_last_error());
        return 1;
    }
    printf("outside: %s sum %g ok\n", tg_shape_str(shape, sizeof shape, m->ndim, m->shape), tg_tensor_item(s));
    tg_tensor_free(a);
    tg_tensor_free(m);
    tg_tensor_free(s);
    return 0;
}
