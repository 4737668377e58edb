/*
 * The CONNECT floor for bench/proxy.sh --floors: the least a forward proxy
 * can do per tunnel, in C. One thread, one epoll set, sockets registered
 * once (edge-triggered); per client: read the CONNECT head, connect to
 * 127.0.0.1 at the head's port (no name lookup, no policy, no log), answer
 * 200, copy bytes both ways and pass half-closes. What remains is what the
 * kernel charges a proxy for two TCP connections per tunnel and the few
 * system calls each needs, the cost no proxy that opens an upstream
 * connection per CONNECT can go below. It only understands what the
 * benchmark sends. Not a proxy to use.
 *
 *   cc -O2 -o connect-floor bench/lib/connect-floor.c && ./connect-floor PORT
 */
#define _GNU_SOURCE /* accept4, memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BUFFER = 64 * 1024, HEAD_MAX = 4096, EVENTS = 256 };

struct tunnel;

/* One socket of a tunnel; epoll's data.ptr points here. */
struct side {
  int fd;
  int readable; /* may hold unread bytes (edge-triggered: read until short) */
  int hangup;   /* the peer's FIN arrived: read on until 0 */
  struct tunnel *tunnel;
};

/* Bytes read from one side and not yet written to the other. */
struct direction {
  char buf[BUFFER];
  size_t off, len;
  int eof;      /* the source has ended */
  int shutdown; /* the end was passed on (SHUT_WR) */
};

struct tunnel {
  enum { HEAD, CONNECTING, OPEN } state;
  int dead; /* closed in this batch of events: freed after it */
  struct side client, upstream;
  struct direction up, down; /* client -> upstream, upstream -> client */
  struct tunnel *next_dead; /* on dead_list, then free_list */
};

static int epfd;
static struct tunnel *dead_list; /* ended in this batch of events */
static struct tunnel *free_list; /* reused: a fresh 128 KiB per tunnel costs page faults */

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void watch(struct side *s) {
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = s};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0) die("epoll_ctl");
}

static void end_tunnel(struct tunnel *t) {
  if (t->dead) return;
  t->dead = 1;
  close(t->client.fd); /* close also removes the fd from the epoll set */
  if (t->upstream.fd >= 0) close(t->upstream.fd);
  t->next_dead = dead_list;
  dead_list = t;
}

/* Moves bytes from src to dst until src has none or dst is full. */
static void pump(struct tunnel *t, struct side *src, struct side *dst, struct direction *d) {
  for (;;) {
    if (d->off < d->len) {
      ssize_t n = send(dst->fd, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno != EAGAIN) end_tunnel(t);
        return; /* EPOLLOUT on dst brings us back */
      }
      d->off += (size_t)n;
      if (d->off < d->len) return;
      d->off = d->len = 0;
    }
    if (d->eof) {
      if (!d->shutdown) {
        shutdown(dst->fd, SHUT_WR);
        d->shutdown = 1;
      }
      return;
    }
    if (!src->readable) return;
    ssize_t n = read(src->fd, d->buf, sizeof d->buf);
    if (n > 0) {
      d->len = (size_t)n;
      /* A short read emptied the socket; a later arrival is a new edge. */
      if ((size_t)n < sizeof d->buf && !src->hangup) src->readable = 0;
    } else if (n == 0) {
      d->eof = 1;
    } else if (errno == EAGAIN) {
      src->readable = 0;
      return;
    } else {
      end_tunnel(t);
      return;
    }
  }
}

static void refuse(struct tunnel *t, const char *answer) {
  send(t->client.fd, answer, strlen(answer), MSG_NOSIGNAL);
  end_tunnel(t);
}

/* The CONNECT head is read into up.buf; its end starts the upstream connection. */
static void read_head(struct tunnel *t) {
  struct direction *d = &t->up;
  for (;;) {
    size_t room = HEAD_MAX - d->len;
    ssize_t n = read(t->client.fd, d->buf + d->len, room);
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      end_tunnel(t);
      return;
    }
    d->len += (size_t)n;
    char *end = memmem(d->buf, d->len, "\r\n\r\n", 4);
    if (end == NULL) {
      if (d->len == HEAD_MAX) {
        refuse(t, "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n");
        return;
      }
      if ((size_t)n == room) continue;
      return; /* a short read emptied the socket: wait for the next edge */
    }
    /* CONNECT host:port HTTP/1.1 */
    long port = 0;
    if (end - d->buf > 8 && memcmp(d->buf, "CONNECT ", 8) == 0) {
      char *space = memchr(d->buf + 8, ' ', (size_t)(end - d->buf) - 8);
      char *colon = NULL;
      for (char *p = d->buf + 8; space != NULL && p < space; p++)
        if (*p == ':') colon = p;
      if (colon != NULL) port = strtol(colon + 1, NULL, 10);
    }
    if (port <= 0 || port > 65535) {
      refuse(t, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
      return;
    }
    /* Bytes after the head go upstream once it is connected. */
    size_t head = (size_t)(end + 4 - d->buf);
    memmove(d->buf, d->buf + head, d->len - head);
    d->len -= head;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    t->upstream.fd = fd;
    if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS) {
      refuse(t, "HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n");
      return;
    }
    t->state = CONNECTING;
    watch(&t->upstream);
    return;
  }
}

static void on_event(struct side *s, uint32_t events) {
  struct tunnel *t = s->tunnel;
  if (t->dead) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s->readable = 1;
  if (events & (EPOLLRDHUP | EPOLLHUP)) s->hangup = 1;
  if (t->state == HEAD) {
    if (s == &t->client && s->readable) read_head(t);
    return;
  }
  if (t->state == CONNECTING) {
    if (s != &t->upstream || !(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int error = 0;
    socklen_t len = sizeof error;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &error, &len);
    if (error != 0) {
      refuse(t, "HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n");
      return;
    }
    static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    memcpy(t->down.buf, established, sizeof established - 1);
    t->down.len = sizeof established - 1;
    t->state = OPEN;
  }
  pump(t, &t->client, &t->upstream, &t->up);
  if (!t->dead) pump(t, &t->upstream, &t->client, &t->down);
  if (!t->dead && t->up.shutdown && t->down.shutdown) end_tunnel(t);
}

int main(int argc, char **argv) {
  long port = argc == 2 ? strtol(argv[1], NULL, 10) : 0;
  if (port <= 0 || port > 65535) {
    fprintf(stderr, "usage: connect-floor PORT\n");
    return 2;
  }
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(lfd, (struct sockaddr *)&at, sizeof at) < 0 || listen(lfd, 1024) < 0) die("listen");
  epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0) die("epoll_ctl");
  struct epoll_event events[EVENTS];
  for (;;) {
    int n = epoll_wait(epfd, events, EVENTS, -1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr != NULL) {
        on_event(events[i].data.ptr, events[i].events);
        continue;
      }
      int fd;
      while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        struct tunnel *t = free_list;
        if (t != NULL)
          free_list = t->next_dead;
        else if ((t = malloc(sizeof *t)) == NULL)
          die("malloc");
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        t->state = HEAD;
        t->dead = 0;
        t->client = (struct side){.fd = fd, .tunnel = t};
        t->upstream = (struct side){.fd = -1, .tunnel = t};
        t->up.off = t->up.len = t->down.off = t->down.len = 0;
        t->up.eof = t->up.shutdown = t->down.eof = t->down.shutdown = 0;
        watch(&t->client);
      }
    }
    while (dead_list != NULL) {
      struct tunnel *t = dead_list;
      dead_list = t->next_dead;
      t->next_dead = free_list;
      free_list = t;
    }
  }
}
