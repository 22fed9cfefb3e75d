/**
 * The netns area's error codes (docs/ERRORS.md): the host cannot build namespaces, a command that
 * builds the topology failed, or the delay bridge did not start.
 */
import { type CodesOf, defineErrors } from '../common/errors.ts'

export const NETNS_ERRORS = defineErrors({
  NETNS_UNAVAILABLE: {
    status: 501,
    what: '`devnet --netns` cannot run here: not Linux, not root, a tool (ip, iptables, ethtool, sysctl) missing, or build/delay-bridge not built',
    fix: 'run as root on Linux; `apt-get install -y iproute2 iptables ethtool`; `node scripts/build-native.ts --strict` builds the bridge (needs a C compiler)',
  },
  NETNS_COMMAND_FAILED: {
    status: 500,
    what: 'a command building or removing the namespace topology (ip, iptables, ethtool, sysctl) failed; the message has the command and its stderr',
    fix: 'read the command and its error; `nodus devnet --netns --cleanup` removes what a failed run left',
  },
  NETNS_BRIDGE_FAILED: {
    status: 500,
    what: 'the delay bridge (build/delay-bridge) exited or did not report ready',
    fix: 'read its stderr in the message; rebuild it with `node scripts/build-native.ts --strict`',
  },
})

declare module '../common/errors.ts' {
  interface ErrorCodes extends CodesOf<typeof NETNS_ERRORS> {}
}
