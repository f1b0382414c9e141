#ifndef WEBSEED_CNATPMP_SHIM_H
#define WEBSEED_CNATPMP_SHIM_H
#include <natpmp.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <string.h>

/* Waits (select) for libnatpmp's socket until its retry time, at most max_ms; then reads
   the answer or lets the library resend. Returns what readnatpmpresponseorretry returns. */
static inline int ws_natpmp_step(natpmp_t *p, natpmpresp_t *response, int max_ms) {
    struct timeval timeout;
    if (getnatpmprequesttimeout(p, &timeout) < 0) return NATPMP_ERR_NOPENDINGREQ;
    long ms = timeout.tv_sec * 1000 + timeout.tv_usec / 1000;
    if (ms > max_ms) { timeout.tv_sec = max_ms / 1000; timeout.tv_usec = (max_ms % 1000) * 1000; }
    if (ms < 0) { timeout.tv_sec = 0; timeout.tv_usec = 0; }
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(p->s, &fds);
    select(p->s + 1, &fds, NULL, NULL, &timeout);
    return readnatpmpresponseorretry(p, response);
}

/* The gateway libnatpmp found (dotted quad into out, 16 bytes). */
static inline void ws_natpmp_gateway(const natpmp_t *p, char *out) {
    struct in_addr a;
    a.s_addr = p->gateway;
    inet_ntop(AF_INET, &a, out, 16);
}

/* This host's address on the way to the gateway (the socket is connected to it). */
static inline int ws_natpmp_local(const natpmp_t *p, char *out) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    memset(&a, 0, sizeof a);
    if (getsockname(p->s, (struct sockaddr *)&a, &len) != 0) return -1;
    return inet_ntop(AF_INET, &a.sin_addr, out, 16) ? 0 : -1;
}

static inline void ws_natpmp_public_address(const natpmpresp_t *r, char *out) {
    inet_ntop(AF_INET, &r->pnu.publicaddress.addr, out, 16);
}
#endif
