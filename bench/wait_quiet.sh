# Sourced by the bench scripts: wait_quiet waits (up to 120 s) until both CPUs were >90% idle
# over 2 s, so one run does not measure another.
wait_quiet() {
  local start=$SECONDS u1 n1 s1 i1 w1 x1 y1 z1 u2 n2 s2 i2 w2 x2 y2 z2 busy idle
  while [ $((SECONDS - start)) -lt 120 ]; do
    read -r _ u1 n1 s1 i1 w1 x1 y1 z1 _ </proc/stat; sleep 2
    read -r _ u2 n2 s2 i2 w2 x2 y2 z2 _ </proc/stat
    busy=$(( (u2+n2+s2+x2+y2+z2) - (u1+n1+s1+x1+y1+z1) )); idle=$(( (i2+w2) - (i1+w1) ))
    [ $(( 100 * idle / (busy + idle) )) -ge 90 ] && return 0
  done
  echo "(machine not quiet after 120 s; figures below may be low)" >&2
}
