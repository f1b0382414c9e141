// The least time a program can take to hash one large file the way `webseed create` does, on
// this machine: THREADS threads take 4 MiB units of FILE in turn, map each read-only and
// hash it as 16 KiB blocks (one SHA-256 per block through EVP, as webseed and `openssl speed
// -bytes 16384` do). Nothing else: no process start-up counted, no Merkle tree above the
// blocks, no torrent written. Tools/bench/create runs it beside `webseed create` on the 1 GiB
// corpus, so the report shows how much of the gap to `openssl speed -multi 2` (a 16 KiB
// buffer hashed over and over in the CPU's cache) is the machine's, not webseed's.
//
//   cc -O2 -o hashfloor Tools/bench/hashfloor.c -lcrypto -lpthread
//   hashfloor FILE THREADS      prints the seconds from opening FILE to the last digest
#define _GNU_SOURCE
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define UNIT (4 << 20)
#define BLOCK 16384

static int fd;
static size_t size;
static atomic_size_t next_unit;
static atomic_uint checksum;

static void *worker(void *unused) {
    (void)unused;
    EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (md == NULL || ctx == NULL || EVP_DigestInit_ex(ctx, md, NULL) != 1) abort();
    unsigned char digest[32];
    unsigned int length;
    unsigned int sum = 0;
    for (;;) {
        size_t offset = atomic_fetch_add(&next_unit, 1) * (size_t)UNIT;
        if (offset >= size) break;
        size_t n = size - offset < UNIT ? size - offset : UNIT;
        unsigned char *p = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, (off_t)offset);
        if (p == MAP_FAILED) { perror("mmap"); exit(1); }
        posix_madvise(p, n, POSIX_MADV_SEQUENTIAL);
        for (size_t b = 0; b < n; b += BLOCK) {
            size_t m = n - b < BLOCK ? n - b : BLOCK;
            if (EVP_DigestUpdate(ctx, p + b, m) != 1 || EVP_DigestFinal_ex(ctx, digest, &length) != 1
                || EVP_DigestInit_ex(ctx, NULL, NULL) != 1) abort();
            sum += digest[0];
        }
        munmap(p, n);
    }
    atomic_fetch_add(&checksum, sum);  // keeps the digests from being optimised away
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3 || atoi(argv[2]) < 1 || atoi(argv[2]) > 64) {
        fprintf(stderr, "usage: hashfloor FILE THREADS\n");
        return 2;
    }
    int threads = atoi(argv[2]);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    fd = open(argv[1], O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) { perror(argv[1]); return 1; }
    size = (size_t)st.st_size;
    pthread_t t[64];
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &end);
    printf("%.6f %u\n", (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9, atomic_load(&checksum));
    return 0;
}
