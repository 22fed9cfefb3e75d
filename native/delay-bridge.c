/*
 * delay-bridge: a two-port layer-2 bridge that delays, jitters and drops frames, for network
 * namespaces on kernels without the netem qdisc (src/netns/README.md).
 *
 * It runs in a middle namespace holding two veth ends, --a and --b. Every frame received on one
 * (an AF_PACKET raw socket per interface, promiscuous, its own transmissions skipped: PACKET_OUTGOING)
 * is written to the other after `delay ± jitter` milliseconds (uniform jitter, as netem's default
 * distribution), or dropped with probability `loss` (independent per frame, netem's random loss
 * without correlation). Frames of one direction leave in the order they arrived unless --reorder
 * (a link that does not reorder: a frame's due time is at least its predecessor's).
 *
 * Frames wait in one bounded pool (--queue frames, default 4096; a frame arriving when it is full is
 * dropped and counted, as a full router queue would) ordered by a binary min-heap on due time (then
 * arrival order). One epoll loop waits on both sockets, a timerfd armed at the earliest due time, a
 * signalfd and optionally stdin: no busy-looping, and the kernel wakes it when there is work.
 *
 * Randomness: xoshiro256** (Blackman and Vigna, "Scrambled linear pseudorandom number generators",
 * 2018) seeded through splitmix64 from --seed, so a run's drops and jitter repeat for a seed and the
 * same traffic.
 *
 * Output: one JSON line on stdout when the sockets are bound ({"event":"ready",...}), and one with the
 * counters ({"event":"counters",...}) on SIGUSR1 and before exiting on SIGTERM/SIGINT (or, with
 * --exit-on-stdin-eof, when stdin closes: the parent died). Bad arguments exit 2, setup failures 1.
 *
 * Usage: delay-bridge --a IF --b IF [--delay-ms N] [--jitter-ms N] [--loss P] [--seed N]
 *                     [--queue FRAMES] [--reorder] [--exit-on-stdin-eof]
 *   --loss: a fraction below 1 (0.005), else per mille (5 = 0.5 %), at most 1000.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif
#ifndef PACKET_QDISC_BYPASS
#define PACKET_QDISC_BYPASS 20
#endif

/* Largest frame kept: an Ethernet frame at MTU 1500 with a VLAN tag is 1518 bytes; jumbo frames
 * (and offloaded super-frames, which must be off on the path) are dropped and counted. */
#define SLOT_BYTES 2048
/* Frames read per socket per wake-up, so one busy direction cannot starve the other. */
#define RX_BATCH 64

struct frame {
  uint64_t due_ns;
  uint64_t seq;
  uint16_t len;
  uint8_t dir; /* 0: a -> b, 1: b -> a */
  uint8_t data[SLOT_BYTES];
};

struct dir_counters {
  uint64_t rx, tx, tx_bytes, lost, queue_full, oversize, tx_errors;
};

static struct frame *pool;
static uint32_t *free_list, free_count;
static uint32_t *heap, heap_len, heap_max;
static uint32_t capacity = 4096;
static uint64_t next_seq;
static struct dir_counters ctr[2];
static const char *if_name[2];
static int sock[2];

/* xoshiro256** seeded by splitmix64. */
static uint64_t rng_s[4];
static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t rng_next(void) {
  uint64_t r = rotl(rng_s[1] * 5, 7) * 9;
  uint64_t t = rng_s[1] << 17;
  rng_s[2] ^= rng_s[0];
  rng_s[3] ^= rng_s[1];
  rng_s[1] ^= rng_s[2];
  rng_s[0] ^= rng_s[3];
  rng_s[2] ^= t;
  rng_s[3] = rotl(rng_s[3], 45);
  return r;
}
/* Uniform in [0, 1). */
static double rng_unit(void) { return (double)(rng_next() >> 11) * 0x1.0p-53; }

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int before(uint32_t i, uint32_t j) {
  const struct frame *a = &pool[i], *b = &pool[j];
  return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->seq < b->seq);
}
static void heap_push(uint32_t idx) {
  uint32_t k = heap_len++;
  heap[k] = idx;
  while (k > 0) {
    uint32_t p = (k - 1) / 2;
    if (!before(heap[k], heap[p])) break;
    uint32_t t = heap[k];
    heap[k] = heap[p];
    heap[p] = t;
    k = p;
  }
  if (heap_len > heap_max) heap_max = heap_len;
}
static uint32_t heap_pop(void) {
  uint32_t top = heap[0];
  heap[0] = heap[--heap_len];
  uint32_t k = 0;
  for (;;) {
    uint32_t l = 2 * k + 1, r = l + 1, m = k;
    if (l < heap_len && before(heap[l], heap[m])) m = l;
    if (r < heap_len && before(heap[r], heap[m])) m = r;
    if (m == k) break;
    uint32_t t = heap[k];
    heap[k] = heap[m];
    heap[m] = t;
    k = m;
  }
  return top;
}

static void print_counters(const char *event) {
  printf("{\"event\":\"%s\",\"a\":\"%s\",\"b\":\"%s\",\"queued\":%" PRIu32 ",\"maxQueued\":%" PRIu32
         ",\"capacity\":%" PRIu32,
         event, if_name[0], if_name[1], heap_len, heap_max, capacity);
  static const char *names[2] = {"ab", "ba"};
  for (int d = 0; d < 2; d++) {
    const struct dir_counters *c = &ctr[d];
    printf(",\"%s\":{\"rx\":%" PRIu64 ",\"tx\":%" PRIu64 ",\"txBytes\":%" PRIu64 ",\"lost\":%" PRIu64
           ",\"queueFull\":%" PRIu64 ",\"oversize\":%" PRIu64 ",\"txErrors\":%" PRIu64 "}",
           names[d], c->rx, c->tx, c->tx_bytes, c->lost, c->queue_full, c->oversize, c->tx_errors);
  }
  printf("}\n");
  fflush(stdout);
}

static int open_socket(const char *ifname) {
  unsigned idx = if_nametoindex(ifname);
  if (idx == 0) {
    fprintf(stderr, "delay-bridge: no interface %s: %s\n", ifname, strerror(errno));
    return -1;
  }
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) {
    fprintf(stderr, "delay-bridge: AF_PACKET socket: %s (needs CAP_NET_RAW)\n", strerror(errno));
    return -1;
  }
  struct sockaddr_ll sll = {0};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = (int)idx;
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
    fprintf(stderr, "delay-bridge: bind %s: %s\n", ifname, strerror(errno));
    close(fd);
    return -1;
  }
  struct packet_mreq mr = {0};
  mr.mr_ifindex = (int)idx;
  mr.mr_type = PACKET_MR_PROMISC;
  if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) {
    fprintf(stderr, "delay-bridge: promiscuous %s: %s\n", ifname, strerror(errno));
    close(fd);
    return -1;
  }
  int one = 1;
  /* Optional speed-ups: older kernels lack them; the PACKET_OUTGOING check below still applies. */
  (void)setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
  (void)setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
  int buf = 8 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) < 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf) < 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  return fd;
}

static void send_frame(const struct frame *f) {
  struct dir_counters *c = &ctr[f->dir];
  ssize_t n = send(sock[f->dir ^ 1], f->data, f->len, MSG_DONTWAIT);
  if (n == (ssize_t)f->len) {
    c->tx++;
    c->tx_bytes += f->len;
  } else {
    c->tx_errors++; /* EAGAIN/ENOBUFS: the egress queue is full; the frame is lost, as on a wire */
  }
}

static int usage(const char *msg) {
  fprintf(stderr,
          "delay-bridge: %s\nusage: delay-bridge --a IF --b IF [--delay-ms N] [--jitter-ms N] [--loss P] "
          "[--seed N] [--queue FRAMES] [--reorder] [--exit-on-stdin-eof]\n",
          msg);
  return 2;
}

static int parse_double(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi)) return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  double delay_ms = 0, jitter_ms = 0, loss = 0, seed = 1, queue = 4096;
  int reorder = 0, watch_stdin = 0;
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i];
    if (strcmp(k, "--reorder") == 0) {
      reorder = 1;
      continue;
    }
    if (strcmp(k, "--exit-on-stdin-eof") == 0) {
      watch_stdin = 1;
      continue;
    }
    if (i + 1 >= argc) return usage("missing value");
    const char *v = argv[++i];
    int bad = 0;
    if (strcmp(k, "--a") == 0) if_name[0] = v;
    else if (strcmp(k, "--b") == 0) if_name[1] = v;
    else if (strcmp(k, "--delay-ms") == 0) bad = parse_double(v, 0, 600000, &delay_ms);
    else if (strcmp(k, "--jitter-ms") == 0) bad = parse_double(v, 0, 600000, &jitter_ms);
    else if (strcmp(k, "--loss") == 0) bad = parse_double(v, 0, 1000, &loss);
    else if (strcmp(k, "--seed") == 0) bad = parse_double(v, 0, 9007199254740991.0, &seed);
    else if (strcmp(k, "--queue") == 0) bad = parse_double(v, 1, 1 << 20, &queue);
    else return usage("unknown option");
    if (bad) return usage("bad value");
  }
  if (if_name[0] == NULL || if_name[1] == NULL) return usage("--a and --b are required");
  if (strcmp(if_name[0], if_name[1]) == 0) return usage("--a and --b must differ");
  double loss_p = loss < 1 ? loss : loss / 1000.0; /* fraction, or per mille from 1 up */
  capacity = (uint32_t)queue;
  uint64_t delay_ns = (uint64_t)(delay_ms * 1e6);
  double jitter_ns = jitter_ms * 1e6;
  uint64_t sm = (uint64_t)seed;
  for (int i = 0; i < 4; i++) rng_s[i] = splitmix64(&sm);

  pool = calloc(capacity, sizeof *pool);
  free_list = calloc(capacity, sizeof *free_list);
  heap = calloc(capacity, sizeof *heap);
  if (pool == NULL || free_list == NULL || heap == NULL) {
    fprintf(stderr, "delay-bridge: out of memory for %u frames\n", capacity);
    return 1;
  }
  for (uint32_t i = 0; i < capacity; i++) free_list[i] = capacity - 1 - i;
  free_count = capacity;

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGUSR1);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  signal(SIGPIPE, SIG_IGN);
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (sfd < 0 || tfd < 0 || ep < 0) {
    fprintf(stderr, "delay-bridge: setup: %s\n", strerror(errno));
    return 1;
  }
  for (int d = 0; d < 2; d++) {
    sock[d] = open_socket(if_name[d]);
    if (sock[d] < 0) return 1;
  }
  /* epoll data: 0, 1 the sockets; 2 the timer; 3 signals; 4 stdin. */
  int fds[5] = {sock[0], sock[1], tfd, sfd, watch_stdin ? 0 : -1};
  for (int i = 0; i < 5; i++) {
    if (fds[i] < 0) continue;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
      fprintf(stderr, "delay-bridge: epoll_ctl: %s\n", strerror(errno));
      return 1;
    }
  }
  printf("{\"event\":\"ready\",\"a\":\"%s\",\"b\":\"%s\",\"delayMs\":%g,\"jitterMs\":%g,\"loss\":%g,"
         "\"queue\":%u,\"reorder\":%s}\n",
         if_name[0], if_name[1], delay_ms, jitter_ms, loss_p, capacity, reorder ? "true" : "false");
  fflush(stdout);

  uint64_t last_due[2] = {0, 0};
  uint64_t armed = 0; /* the due time the timer is armed for, 0: disarmed */
  uint8_t scratch[SLOT_BYTES];
  struct epoll_event evs[8];
  for (;;) {
    int n = epoll_wait(ep, evs, 8, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "delay-bridge: epoll_wait: %s\n", strerror(errno));
      return 1;
    }
    for (int e = 0; e < n; e++) {
      uint32_t what = evs[e].data.u32;
      if (what <= 1) {
        int d = (int)what;
        struct dir_counters *c = &ctr[d];
        for (int k = 0; k < RX_BATCH; k++) {
          struct sockaddr_ll from;
          socklen_t fl = sizeof from;
          struct frame *f = free_count > 0 ? &pool[free_list[free_count - 1]] : NULL;
          uint8_t *buf = f != NULL ? f->data : scratch;
          ssize_t len = recvfrom(sock[d], buf, SLOT_BYTES, MSG_DONTWAIT | MSG_TRUNC,
                                 (struct sockaddr *)&from, &fl);
          if (len < 0) break; /* EAGAIN: drained */
          if (from.sll_pkttype == PACKET_OUTGOING) continue;
          c->rx++;
          if (len > SLOT_BYTES) {
            c->oversize++;
            continue;
          }
          if (loss_p > 0 && rng_unit() < loss_p) {
            c->lost++;
            continue;
          }
          if (f == NULL) {
            c->queue_full++;
            continue;
          }
          uint64_t due = now_ns() + delay_ns;
          if (jitter_ns > 0) {
            double j = (rng_unit() * 2 - 1) * jitter_ns;
            due = j < 0 && (uint64_t)(-j) > due ? 0 : (uint64_t)((int64_t)due + (int64_t)j);
          }
          if (!reorder) {
            if (due < last_due[d]) due = last_due[d];
            last_due[d] = due;
          }
          uint32_t idx = free_list[--free_count];
          f->due_ns = due;
          f->seq = next_seq++;
          f->len = (uint16_t)len;
          f->dir = (uint8_t)d;
          heap_push(idx);
        }
      } else if (what == 2) {
        uint64_t expirations;
        (void)read(tfd, &expirations, sizeof expirations);
        armed = 0;
      } else if (what == 3) {
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
          if (si.ssi_signo == SIGUSR1) {
            print_counters("counters");
          } else {
            print_counters("counters");
            return 0;
          }
        }
      } else if (what == 4) {
        char b[256];
        ssize_t r = read(0, b, sizeof b);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
          print_counters("counters");
          return 0;
        }
      }
    }
    /* Send every frame that is due, then arm the timer for the next. */
    uint64_t now = now_ns();
    while (heap_len > 0 && pool[heap[0]].due_ns <= now) {
      uint32_t idx = heap_pop();
      send_frame(&pool[idx]);
      free_list[free_count++] = idx;
    }
    if (heap_len > 0) {
      uint64_t due = pool[heap[0]].due_ns;
      if (due != armed) {
        struct itimerspec its = {0};
        its.it_value.tv_sec = (time_t)(due / 1000000000ULL);
        its.it_value.tv_nsec = (long)(due % 1000000000ULL);
        timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        armed = due;
      }
    } else if (armed != 0) {
      struct itimerspec its = {0};
      timerfd_settime(tfd, 0, &its, NULL);
      armed = 0;
    }
  }
}
