// The allow and deny lists as the kernel holds them (the acl trie and the
// rule_policy array), read from user space for the clients sk_lookup cannot
// judge: the real clients behind a trusted load balancer, known only once the
// engine has read their PROXY header (accept_proxy).
#pragma once
#include <cstdint>

#include "sock_address.h"
#include "unique_fd.h"

class AccessLists {
 public:
  // Duplicates both fds: the lists outlive whoever handed them over.
  AccessLists(int acl_fd, int policy_fd);

  // 0 when `client` is admitted to rule_id, else an enum denial_reason: the
  // global lists, then the rule's own, as the sk_lookup program judges them.
  int Refusal(uint32_t rule_id, const SockAddress& client) const;
  // Whether `peer` is one of rule_id's trusted load balancers. sk_lookup
  // refused the others already; this also covers a listener's first moments,
  // before its binding reaches the trie.
  bool Trusted(uint32_t rule_id, const SockAddress& peer) const;

 private:
  bool Listed(uint32_t scope, uint8_t list, const SockAddress& addr) const;

  UniqueFd acl_;
  UniqueFd policy_;
};
