# drawn by `study`; redraw with: gnuplot depth_compare.gp
if (!exists('out')) out = 'depth_compare.png'
set terminal pngcairo noenhanced size 1700,520 font 'sans,10'
set output out
$sum << EOD
# VGG_08 (seed 0)
1 1.87233154 1.36477953 0.314 0.493666667
2 1.20203641 0.981099687 0.5506 0.641333333
3 0.952511592 0.851346817 0.6504 0.68
4 0.840133477 0.787154563 0.6945 0.700666667
5 0.777682701 0.760071864 0.7185 0.693


# VGG_08 (seed 1)
1 1.71552611 1.12437356 0.3609 0.588
2 1.02764397 0.890866117 0.6206 0.673333333
3 0.852560289 0.788852217 0.6855 0.71
4 0.777333772 0.776499208 0.7177 0.710666667
5 0.727689599 0.741379531 0.731 0.720666667


# VGG_08 (seed 2)
1 1.79899127 1.29876874 0.3303 0.489333333
2 1.17402521 0.996156381 0.5518 0.613333333
3 0.945597911 0.851199677 0.6503 0.671333333
4 0.835504559 0.795499823 0.6957 0.693333333
5 0.782813524 0.755404762 0.7115 0.709666667


# VGG_38 (seed 0)
1 2.30384429 2.30317411 0.0969 0.104333333
2 2.30281144 2.30287445 0.1013 0.104333333
3 2.30258004 2.30269263 0.0992 0.102333333
4 2.3023476 2.30282105 0.1034 0.104333333
5 2.30223397 2.3028205 0.1039 0.104333333


# VGG_38 (seed 1)
1 2.30414837 2.30284274 0.1015 0.104333333
2 2.30275138 2.30302241 0.1021 0.104333333
3 2.30253475 2.30301098 0.1016 0.104333333
4 2.30235211 2.30278813 0.1007 0.104333333
5 2.30224002 2.30277096 0.1039 0.104333333


# VGG_38 (seed 2)
1 2.3053462 2.30253378 0.1042 0.109
2 2.30293507 2.30260221 0.0989 0.102333333
3 2.30272009 2.30267332 0.0984 0.0993333333
4 2.30239876 2.30255056 0.1019 0.104333333
5 2.30226912 2.30254631 0.1039 0.104333333
EOD
$grad << EOD
# VGG_08 (seed 0)
1 0.010221385
2 0.00624603092
3 0.00880985889
4 0.00682428172
5 0.00863175728


# VGG_08 (seed 1)
1 0.00754255651
2 0.0213685869
3 0.0233364676
4 0.0175827614
5 0.0158605246


# VGG_08 (seed 2)
1 0.00162501909
2 0.00254215338
3 0.00388443352
4 0.00758624153
5 0.0130861797


# VGG_38 (seed 0)
1 2.93753708e-18
2 1.75965848e-18
3 1.7687507e-18
4 1.68603441e-18
5 2.65126174e-18


# VGG_38 (seed 1)
1 4.5681756e-18
2 6.27683542e-18
3 6.30710147e-18
4 8.50782015e-18
5 6.40427835e-18


# VGG_38 (seed 2)
1 2.86142098e-17
2 1.67423652e-18
3 7.8811635e-19
4 1.89914469e-18
5 1.48179323e-18
EOD
set grid
set xlabel 'epoch'
set key bottom left
set xtics 1
set multiplot layout 1,3 title 'depth: VGG_08 vs VGG_38, no batch norm'
set title 'error: validation solid, training dashed'
set ylabel 'cross-entropy loss'
set key top right
plot $sum index 0 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'VGG_08 (seed 0)', \
     $sum index 0 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 1 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'VGG_08 (seed 1)', \
     $sum index 1 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 2 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'VGG_08 (seed 2)', \
     $sum index 2 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 3 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'VGG_38 (seed 0)', \
     $sum index 3 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 4 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'VGG_38 (seed 1)', \
     $sum index 4 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 5 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'VGG_38 (seed 2)', \
     $sum index 5 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle
set title 'accuracy: validation solid, training dashed'
set ylabel 'accuracy'
set key bottom right
plot $sum index 0 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'VGG_08 (seed 0)', \
     $sum index 0 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 1 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'VGG_08 (seed 1)', \
     $sum index 1 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 2 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'VGG_08 (seed 2)', \
     $sum index 2 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 3 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'VGG_38 (seed 0)', \
     $sum index 3 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 4 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'VGG_38 (seed 1)', \
     $sum index 4 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 5 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'VGG_38 (seed 2)', \
     $sum index 5 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle
set title 'mean |dL/dW| of the first conv layer (input_conv_conv_0)'
set ylabel 'mean |dL/dW|'
set logscale y
set format y '%.0e'
plot $grad index 0 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 1 notitle, \
     $grad index 1 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 1 notitle, \
     $grad index 2 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 1 notitle, \
     $grad index 3 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 2 notitle, \
     $grad index 4 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 2 notitle, \
     $grad index 5 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 2 notitle
unset multiplot
