# Draws msgs/s against max_in_flight for the engine and CAF's two ceilings.
# Called by mailroom_bench as:
#   gnuplot -e "datafile='…/throughput.dat'; outfile='…/throughput.png'; charttitle='…'" throughput.gp
# throughput.dat columns: max_in_flight engine long_lived spawn ('?' = missing).
if (!exists("datafile")) datafile = 'bench/out/throughput.dat'
if (!exists("outfile")) outfile = 'bench/out/throughput.png'
if (!exists("charttitle")) charttitle = 'mailroom'

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 1000,620 enhanced font "sans,11"
} else {
  set terminal png size 1000,620
}
set output outfile
set datafile missing '?'
set title "msgs/s vs max\\_in\\_flight: engine end-to-end (no-op handler, dedupe on) and CAF ceilings\n{/*0.8 ".charttitle."}"
set xlabel "max\\_in\\_flight (window of outstanding messages)"
set ylabel "messages per second (log scale)"
set logscale x 2
set format x "%.0f"
set format y "%.0s%c"
set logscale y 10
set autoscale yfix
set grid xtics ytics
set key below horizontal maxcols 3 spacing 1.2
stats datafile using 1 nooutput
set xrange [STATS_min/1.4:STATS_max*1.4]
set xtics nomirror
set offsets 0, 0, graph 0.15, graph 0.15
set ytics ("10k" 1e4, "20k" 2e4, "50k" 5e4, "100k" 1e5, "200k" 2e5, "500k" 5e5, "1M" 1e6, "2M" 2e6, "5M" 5e6, "10M" 1e7, "20M" 2e7)

target = 1000000
plot datafile using 1:3:xtic(1) with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "CAF long-lived ceiling (pool of 8)", \
     datafile using 1:($3*0.5) with lines dt 3 lw 1 lc rgb "#1f77b4" title "0.5x long-lived (target)", \
     datafile using 1:4 with linespoints lw 2 pt 5 lc rgb "#ff7f0e" title "CAF spawn-per-message ceiling", \
     datafile using 1:2 with linespoints lw 3 pt 9 lc rgb "#2ca02c" title "engine end-to-end", \
     target with lines dt 2 lw 1 lc rgb "#d62728" title "1M msgs/s target", \
     datafile using 1:2:(sprintf("%.0fk", $2/1000)) with labels right offset -0.6,0.9 tc rgb "#2ca02c" notitle, \
     datafile using 1:3:(sprintf("%.2fM", $3/1e6)) with labels offset 0,1.1 tc rgb "#1f77b4" notitle, \
     datafile using 1:4:(sprintf("%.0fk", $4/1000)) with labels left offset 0.6,-0.9 tc rgb "#ff7f0e" notitle
