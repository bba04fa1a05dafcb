#!/usr/bin/env python3
"""Writes a tiny data set in Fashion-MNIST's files (gzip IDX) for the study's tests:
28x28 images of noise with a bright stripe whose row says the class, so that even a
tiny network learns something in an epoch.

  tiny_fashion_mnist.py DIR SEED NTRAIN NTEST
"""
import gzip
import os
import random
import struct
import sys


def main():
    out, seed, ntrain, ntest = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(seed)

    def images(n):
        labels, pixels = [], bytearray()
        for _ in range(n):
            k = rng.randrange(10)
            labels.append(k)
            img = bytearray(rng.randrange(40) for _ in range(28 * 28))
            for r in range(2 + 2 * k, 4 + 2 * k):
                for c in range(4, 24):
                    img[r * 28 + c] = 200 + rng.randrange(56)
            pixels += img
        return labels, pixels

    os.makedirs(out, exist_ok=True)
    for part, n in (("train", ntrain), ("t10k", ntest)):
        labels, pixels = images(n)
        with gzip.open(os.path.join(out, part + "-images-idx3-ubyte.gz"), "wb") as f:
            f.write(struct.pack(">IIII", 2051, n, 28, 28) + bytes(pixels))
        with gzip.open(os.path.join(out, part + "-labels-idx1-ubyte.gz"), "wb") as f:
            f.write(struct.pack(">II", 2049, n) + bytes(labels))


if __name__ == '__main__':
    main()
