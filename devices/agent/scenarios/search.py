"""The operating-point search: the most throughput whose p99 stays under a bound.

Runs on the board, inside the job's one agent process, as timed windows of the offline
scenario at different counts of requests in flight (docs/measurement.md, "The best operating
point"). Throughput rises with the requests in flight until the board is saturated, then
stays flat while queueing keeps raising the latency; p99 rises all along. So:

1. Doubling: 1, 2, 4, ... up to ``cap``. It stops at the first window whose p99 breaks the
   bound, at ``cap``, or once a doubling gained less than ``SATURATED`` (3 %) throughput:
   past saturation more requests only wait longer.
2. Bisection, when the bound broke: between the last count within it and the first beyond
   it, until they are adjacent.
3. The choice: of the windows within the bound, the highest throughput; a smaller count
   within ``SATURATED`` of it wins (the same throughput at a lower latency). When even one
   request breaks the bound, the choice is 1, marked ``bound_met: false``.
4. Trimming: where a smaller count than the choice, not yet measured, may reach the same
   throughput (from the largest count short of it to the choice, throughput grew less than
   in proportion: the board saturated in between), bisection between the two finds the
   fewest requests that reach it.

With throughput rising then flat and p99 rising in the requests in flight, this picks what
the full grid 1..cap picks under the same rule, in about 2 log2(cap) windows.

``measure_at(n)`` returns (throughput, p99 ms) of one window. The job then measures one
more, fresh window at the chosen count, with telemetry, so the result is not the best of
several noisy windows (which would favour a lucky one).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

SATURATED = 0.03


def search(measure_at: Callable[[int], Tuple[float, float]], bound_ms: float, cap: int
           ) -> Tuple[int, bool, List[Dict[str, float]]]:
    """(chosen count, whether its p99 met the bound, every window in the order measured)."""
    tried = {}  # type: Dict[int, Tuple[float, float]]
    order = []  # type: List[int]

    def at(n: int) -> Tuple[float, float]:
        if n not in tried:
            tried[n] = measure_at(n)
            order.append(n)
        return tried[n]

    good = None  # type: Optional[int]
    bad = None  # type: Optional[int]
    n = 1
    while True:
        throughput, p99 = at(n)
        if p99 > bound_ms:
            bad = n
            break
        saturated = good is not None and throughput < tried[good][0] * (1 + SATURATED)
        good = n
        if saturated or n >= cap:
            break
        n = min(2 * n, cap)
    while good is not None and bad is not None and bad - good > 1:
        mid = (good + bad) // 2
        if at(mid)[1] <= bound_ms:
            good = mid
        else:
            bad = mid
    chosen = choose(tried, bound_ms)
    if chosen is not None:  # 4. the fewest requests that reach that throughput (saturated boards plateau)
        best = max(tried[n][0] for n in tried if tried[n][1] <= bound_ms)
        below = [n for n in tried if n < chosen and tried[n][0] * (1 + SATURATED) < best]
        low = max(below) if below else None
        if low is not None and tried[low][0] * chosen / low <= best * (1 + SATURATED):
            low = None  # it grew in proportion up to the choice: no smaller count reaches it
        while low is not None and chosen - low > 1:
            mid = (low + chosen) // 2
            throughput, p99 = at(mid)
            if p99 <= bound_ms and throughput * (1 + SATURATED) >= best:
                chosen = mid
            else:
                low = mid
        chosen = choose(tried, bound_ms)
    windows = [{"inflight": k, "throughput_ips": tried[k][0], "p99_ms": tried[k][1]} for k in order]
    return (1, False, windows) if chosen is None else (chosen, True, windows)


def choose(tried: Dict[int, Tuple[float, float]], bound_ms: float) -> Optional[int]:
    """The rule of step 3 over any set of windows (the search's, or a full grid's); None when
    no window meets the bound."""
    within = [n for n, (_, p99) in tried.items() if p99 <= bound_ms]
    if not within:
        return None
    best = max(tried[n][0] for n in within)
    return min(n for n in within if tried[n][0] * (1 + SATURATED) >= best)
