#include "policy_routing.h"

#include <linux/fib_rules.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>

#include "errors.h"
#include "unique_fd.h"

namespace {

// One request and its answers (a dump's parts, or the ack) on a fresh socket.
class Netlink {
 public:
  Netlink() : fd_(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) {
    if (!fd_) ThrowSysError(errno, "socket", "AF_NETLINK NETLINK_ROUTE");
  }

  // Sends msg (a complete nlmsghdr + payload) and feeds every answer to each_reply;
  // throws SysError for an error ack.
  void Request(nlmsghdr* msg, const char* what, const std::function<void(const nlmsghdr*)>& each_reply = nullptr) {
    msg->nlmsg_seq = ++seq_;
    if (send(fd_.get(), msg, msg->nlmsg_len, 0) < 0) ThrowSysError(errno, "send", what);
    alignas(nlmsghdr) char buf[32768];
    for (;;) {
      ssize_t n = recv(fd_.get(), buf, sizeof(buf), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        ThrowSysError(errno, "recv", what);
      }
      for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<unsigned>(n)); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_seq != seq_) continue;
        if (h->nlmsg_type == NLMSG_DONE) return;
        if (h->nlmsg_type == NLMSG_ERROR) {
          int err = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
          if (err) ThrowSysError(err, "netlink", what);
          return;  // the ack of a change
        }
        if (each_reply) each_reply(h);
      }
    }
  }

 private:
  UniqueFd fd_;
  uint32_t seq_ = 0;
};

// A request under construction: header, fixed part, attributes.
template <typename Fixed>
struct Message {
  nlmsghdr header;
  Fixed fixed;
  char attrs[256];

  Message(uint16_t type, uint16_t flags) {
    memset(this, 0, sizeof(*this));
    header.nlmsg_len = NLMSG_LENGTH(sizeof(Fixed));
    header.nlmsg_type = type;
    header.nlmsg_flags = NLM_F_REQUEST | flags;
  }

  void Put(uint16_t type, const void* data, size_t len) {
    auto* attr = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&header) + NLMSG_ALIGN(header.nlmsg_len));
    attr->rta_type = type;
    attr->rta_len = RTA_LENGTH(len);
    memcpy(RTA_DATA(attr), data, len);
    header.nlmsg_len = NLMSG_ALIGN(header.nlmsg_len) + RTA_ALIGN(attr->rta_len);
  }
  void PutU32(uint16_t type, uint32_t value) { Put(type, &value, sizeof(value)); }
};

template <typename Fixed>
void EachAttribute(const nlmsghdr* h, const std::function<void(const rtattr*)>& fn) {
  int len = static_cast<int>(h->nlmsg_len) - NLMSG_LENGTH(sizeof(Fixed));
  for (auto* a = reinterpret_cast<const rtattr*>(reinterpret_cast<const char*>(NLMSG_DATA(h)) + NLMSG_ALIGN(sizeof(Fixed)));
       RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    fn(a);
  }
}

uint32_t U32Of(const rtattr* a) {
  uint32_t v;
  memcpy(&v, RTA_DATA(a), sizeof(v));
  return v;
}

std::string Describe(const char* what, int family, uint32_t table) {
  return std::string(what) + (family == AF_INET6 ? " (IPv6" : " (IPv4") + ", table " + std::to_string(table) + ")";
}

void ChangeRule(uint16_t type, uint16_t flags, const PolicyRule& rule) {
  Message<fib_rule_hdr> msg(type, NLM_F_ACK | flags);
  msg.fixed.family = static_cast<uint8_t>(rule.family);
  msg.fixed.action = FR_ACT_TO_TBL;
  msg.fixed.table = rule.table < 256 ? static_cast<uint8_t>(rule.table) : static_cast<uint8_t>(RT_TABLE_UNSPEC);
  msg.PutU32(FRA_TABLE, rule.table);
  msg.PutU32(FRA_PRIORITY, rule.priority);
  msg.PutU32(FRA_FWMARK, rule.mark);
  msg.PutU32(FRA_FWMASK, rule.mask);
  msg.Put(FRA_PROTOCOL, &rule.protocol, 1);
  Netlink().Request(&msg.header, Describe(type == RTM_NEWRULE ? "add fwmark rule" : "delete fwmark rule", rule.family, rule.table).c_str());
}

void ChangeLocalDefault(uint16_t type, uint16_t flags, int family, uint32_t table, uint8_t protocol) {
  Message<rtmsg> msg(type, NLM_F_ACK | flags);
  msg.fixed.rtm_family = static_cast<uint8_t>(family);
  msg.fixed.rtm_dst_len = 0;
  msg.fixed.rtm_table = table < 256 ? static_cast<uint8_t>(table) : static_cast<uint8_t>(RT_TABLE_UNSPEC);
  msg.fixed.rtm_protocol = protocol;
  msg.fixed.rtm_scope = RT_SCOPE_HOST;
  msg.fixed.rtm_type = RTN_LOCAL;
  msg.PutU32(RTA_TABLE, table);
  unsigned lo = if_nametoindex("lo");
  if (!lo) ThrowSysError(errno, "if_nametoindex", "lo");
  msg.PutU32(RTA_OIF, lo);
  Netlink().Request(&msg.header, Describe(type == RTM_NEWROUTE ? "add local default route" : "delete local default route", family, table).c_str());
}

}  // namespace

std::vector<PolicyRule> ListPolicyRules(int family) {
  Message<fib_rule_hdr> msg(RTM_GETRULE, NLM_F_DUMP);
  msg.fixed.family = static_cast<uint8_t>(family);
  std::vector<PolicyRule> rules;
  Netlink().Request(&msg.header, "list policy rules", [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWRULE) return;
    const auto* hdr = reinterpret_cast<const fib_rule_hdr*>(NLMSG_DATA(h));
    PolicyRule rule;
    rule.family = hdr->family;
    rule.table = hdr->table;
    EachAttribute<fib_rule_hdr>(h, [&](const rtattr* a) {
      switch (a->rta_type) {
        case FRA_TABLE: rule.table = U32Of(a); break;
        case FRA_PRIORITY: rule.priority = U32Of(a); break;
        case FRA_FWMARK: rule.mark = U32Of(a); break;
        case FRA_FWMASK: rule.mask = U32Of(a); break;
        case FRA_PROTOCOL: rule.protocol = *static_cast<const uint8_t*>(RTA_DATA(a)); break;
      }
    });
    // A mark with no mask given is matched whole.
    if (rule.mark && !rule.mask) rule.mask = 0xffffffff;
    rules.push_back(rule);
  });
  return rules;
}

void AddPolicyRule(const PolicyRule& rule) { ChangeRule(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, rule); }
void DeletePolicyRule(const PolicyRule& rule) { ChangeRule(RTM_DELRULE, 0, rule); }

std::vector<TableRoute> ListTableRoutes(int family, uint32_t table) {
  Message<rtmsg> msg(RTM_GETROUTE, NLM_F_DUMP);
  msg.fixed.rtm_family = static_cast<uint8_t>(family);
  std::vector<TableRoute> routes;
  Netlink().Request(&msg.header, "list routes", [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWROUTE) return;
    const auto* hdr = reinterpret_cast<const rtmsg*>(NLMSG_DATA(h));
    TableRoute route;
    route.family = hdr->rtm_family;
    route.table = hdr->rtm_table;
    route.type = hdr->rtm_type;
    route.dst_len = hdr->rtm_dst_len;
    route.protocol = hdr->rtm_protocol;
    EachAttribute<rtmsg>(h, [&](const rtattr* a) {
      if (a->rta_type == RTA_TABLE) route.table = U32Of(a);
    });
    if (route.table == table) routes.push_back(route);
  });
  return routes;
}

void AddLocalDefaultRoute(int family, uint32_t table, uint8_t protocol) {
  ChangeLocalDefault(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, family, table, protocol);
}
void DeleteLocalDefaultRoute(int family, uint32_t table, uint8_t protocol) {
  ChangeLocalDefault(RTM_DELROUTE, 0, family, table, protocol);
}
