#include "access_lists.h"

#include <bpf/bpf.h>
#include <fcntl.h>

#include <cstring>

#include "bpfredir.h"
#include "errors.h"

namespace {

int Duplicate(int fd) {
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) ThrowSysError(errno, "fcntl(F_DUPFD_CLOEXEC)", "access lists");
  return copy;
}

}  // namespace

AccessLists::AccessLists(int acl_fd, int policy_fd) : acl_(Duplicate(acl_fd)), policy_(Duplicate(policy_fd)) {}

bool AccessLists::Listed(uint32_t scope, uint8_t list, const SockAddress& addr) const {
  acl_key key{};
  key.prefixlen = 64 + 128;
  key.scope = scope;
  key.list = list;
  MappedBytes(addr, key.addr);
  uint32_t value;
  return bpf_map_lookup_elem(acl_.get(), &key, &value) == 0;
}

int AccessLists::Refusal(uint32_t rule_id, const SockAddress& client) const {
  for (uint32_t scope : {0u, rule_id}) {
    rule_policy policy{};
    if (bpf_map_lookup_elem(policy_.get(), &scope, &policy) != 0) continue;
    if ((policy.flags & POLICY_HAS_DENY) && Listed(scope, ACL_DENY, client)) return DENIAL_DENIED;
    if ((policy.flags & POLICY_HAS_ALLOW) && !Listed(scope, ACL_ALLOW, client)) return DENIAL_NOT_ALLOWED;
  }
  return 0;
}

bool AccessLists::Trusted(uint32_t rule_id, const SockAddress& peer) const { return Listed(rule_id, ACL_TRUSTED, peer); }
