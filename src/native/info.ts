/** What the native core picked on this machine (for /health and `vrep info`). */
export function nativeInfo(): Record<string, unknown> {
  return {};
}
