#define _GNU_SOURCE
#include "mapped_hash.h"
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>

// The guarded range of this thread's current webseed_hash_blocks call, and where to jump
// when reading it faults. Initial-exec TLS: the handler must not allocate.
static __thread sigjmp_buf *guard_jump __attribute__((tls_model("initial-exec")));
static __thread const char *guard_start __attribute__((tls_model("initial-exec")));
static __thread const char *guard_end __attribute__((tls_model("initial-exec")));

static struct sigaction previous_action;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;

static void on_sigbus(int signal, siginfo_t *info, void *context) {
    (void)signal; (void)context;
    const char *address = info->si_addr;
    sigjmp_buf *jump = guard_jump;
    if (jump != NULL && address >= guard_start && address < guard_end) {
        guard_jump = NULL;
        siglongjmp(*jump, 1);
    }
    // Not a guarded read: give SIGBUS back to its previous handler (or the default action)
    // and return, so the faulting instruction runs again and faults there.
    sigaction(SIGBUS, &previous_action, NULL);
}

static void install_handler(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, &previous_action);
}

int webseed_hash_blocks(const void *data, size_t length, size_t block, unsigned char *leaves,
                        EVP_MD_CTX *sha256, EVP_MD_CTX *sha1) {
    pthread_once(&handler_once, install_handler);
    sigjmp_buf jump;
    // No mask saved (that is a system call per call): SIGBUS is blocked while its handler
    // runs, and only the rare jump back from it unblocks SIGBUS again.
    if (sigsetjmp(jump, 0) != 0) {
        sigset_t bus;
        sigemptyset(&bus);
        sigaddset(&bus, SIGBUS);
        pthread_sigmask(SIG_UNBLOCK, &bus, NULL);
        return -1;
    }
    guard_start = data;
    guard_end = (const char *)data + length;
    guard_jump = &jump;
    const unsigned char *p = data;
    size_t left = length;
    int ok = 1;
    while (left > 0 && ok) {
        size_t n = left < block ? left : block;
        unsigned int digest_length = 0;
        ok = EVP_DigestUpdate(sha256, p, n) == 1
            && EVP_DigestFinal_ex(sha256, leaves, &digest_length) == 1 && digest_length == 32
            && EVP_DigestInit_ex(sha256, NULL, NULL) == 1
            && (sha1 == NULL || EVP_DigestUpdate(sha1, p, n) == 1);
        leaves += 32;
        p += n;
        left -= n;
    }
    guard_jump = NULL;
    return ok ? 0 : -2;
}
