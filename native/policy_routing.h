// The policy routing of router interception, over rtnetlink: one fwmark rule
// and one `local default dev lo` route in a table of bpfredir's own, per
// address family. Both carry bpfredir's routing protocol number, so a later
// start can tell them from anyone else's and remove what a crash left behind.
#pragma once
#include <cstdint>
#include <vector>

struct PolicyRule {
  int family = 0;  // AF_INET or AF_INET6
  uint32_t priority = 0;
  uint32_t table = 0;
  uint32_t mark = 0;
  uint32_t mask = 0;   // 0: the rule matches no mark
  uint8_t protocol = 0;  // who made it (RTPROT_*; ours: the caller's number)
};

struct TableRoute {
  int family = 0;
  uint32_t table = 0;
  uint8_t type = 0;      // RTN_LOCAL, RTN_UNICAST, ...
  uint8_t dst_len = 0;
  uint8_t protocol = 0;
};

// Every policy rule of the family in this netns. Throws SysError.
std::vector<PolicyRule> ListPolicyRules(int family);
// "fwmark mark/mask lookup table" at priority, tagged with protocol. Throws SysError (EEXIST...).
void AddPolicyRule(const PolicyRule& rule);
void DeletePolicyRule(const PolicyRule& rule);

// Every route of the family in `table`.
std::vector<TableRoute> ListTableRoutes(int family, uint32_t table);
// "local default dev lo table T proto P" (0.0.0.0/0 or ::/0).
void AddLocalDefaultRoute(int family, uint32_t table, uint8_t protocol);
void DeleteLocalDefaultRoute(int family, uint32_t table, uint8_t protocol);
