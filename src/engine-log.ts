/** One log line per engine event (connected, connect_failed, closed, fallback, denied, proxy_header_failed, error). */
import type { Logger } from './log.js';
import type { EngineEvent } from './native/index.js';

/** What a timed-out connect of a transparent-source rule most likely means, for its log line. */
export function transparentTimeoutHint(event: EngineEvent): string {
  const client = event.client?.replace(/:\d+$/, '') ?? 'the client';
  return `no reply to ${client}: with transparent_source the target's replies must be routed back through this machine (check the target's route to ${client}, and interception: return_interfaces)`;
}

/** hint: one more sentence for a failed connect, when the rule's settings explain it. */
export function logEngineEvent(logger: Logger, event: EngineEvent, ruleNames: ReadonlyMap<number, string>, hint?: (event: EngineEvent) => string | undefined): void {
  const fields = {
    rule: ruleNames.get(event.ruleId) ?? event.ruleId,
    conn: event.connId,
    client: event.client,
    dst: event.originalDst,
    upstream: event.upstream,
  };
  switch (event.type) {
    case 'connected':
      return logger.info('connected', { ...fields, datapath: event.datapath });
    case 'target_failed':
      return logger.warn('target_failed', { ...fields, code: event.code ?? event.reason, message: event.message });
    case 'connect_failed': {
      const why = hint?.(event);
      return logger.warn('connect_failed', { ...fields, code: event.code ?? event.reason, message: event.message, ...(why && { hint: why }) });
    }
    case 'closed':
      return logger.info('closed', {
        ...fields,
        // Where it ended up: short connections and bulk flows stay on the relay (splice_after, bulk_flows).
        datapath: event.datapath,
        reason: event.reason,
        bytes_to_upstream: event.bytesToUpstream,
        bytes_to_client: event.bytesToClient,
        closed_first: event.closedFirst,
        duration_ms: event.durationMs === undefined ? undefined : Math.round(event.durationMs * 10) / 10,
      });
    case 'fallback':
      return logger.info('fallback', { ...fields, reason: event.reason });
    case 'denials_unlogged':
      return logger.warn('denials_unlogged', { message: event.message });
    case 'denied':
      return logger.info('denied', { rule: fields.rule, client: event.client, dst: event.originalDst, reason: event.reason });
    case 'proxy_header_failed':
      return logger.warn('proxy_header_failed', { rule: fields.rule, conn: event.connId, client: event.client, dst: event.originalDst, reason: event.reason, message: event.message });
    case 'error':
      return logger.error('engine_error', { ...fields, code: event.code, message: event.message });
  }
}
