# Draws the Kafka benchmark's throughput: best and median msgs/s of the raw
# librdkafka consumer, the engine with dedupe off and the engine with Redis
# dedupe, with the 0.8x-raw target. Called by `mailroom_bench kafka` as:
#   gnuplot -e "datafile='…/kafka.dat'; outfile='…/kafka.png'; charttitle='…'" kafka.gp
# kafka.dat columns: "configuration" best median ('?' = missing); row 1 is the raw consumer.
if (!exists("datafile")) datafile = 'bench/out/kafka.dat'
if (!exists("outfile")) outfile = 'bench/out/kafka.png'
if (!exists("charttitle")) charttitle = 'mailroom'

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 900,560 enhanced font "sans,11"
} else {
  set terminal png size 900,560
}
set output outfile
set datafile missing '?'
set title "Kafka: records/s consumed from a pre-filled topic (first record to last), best and median\n{/*0.8 ".charttitle."}"
set ylabel "records per second"
set format y "%.0s%c"
set yrange [0:*]
set grid ytics
set key top right
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set offsets 0, 0, graph 0.12, 0

stats datafile every ::0::0 using 2 nooutput
raw = STATS_max
plot datafile using 2:xtic(1) lc rgb "#2ca02c" title "best", \
     '' using 3 lc rgb "#98df8a" title "median", \
     raw * 0.8 with lines dt 2 lw 1.5 lc rgb "#d62728" title "0.8x raw best (target of the engine, dedupe off)", \
     '' using ($0 - 0.15):2:(sprintf("%.0fk", $2/1000)) with labels offset 0,0.7 notitle, \
     '' using ($0 + 0.15):3:(sprintf("%.0fk", $3/1000)) with labels offset 0,0.7 notitle
