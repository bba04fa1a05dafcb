# drawn by `study`; redraw with: gnuplot bn_compare.gp
if (!exists('out')) out = 'bn_compare.png'
set terminal pngcairo noenhanced size 1700,520 font 'sans,10'
set output out
$sum << EOD
# VGG_38 without BN (seed 0)
1 2.30384429 2.30317411 0.0969 0.104333333
2 2.30281144 2.30287445 0.1013 0.104333333
3 2.30258004 2.30269263 0.0992 0.102333333
4 2.3023476 2.30282105 0.1034 0.104333333
5 2.30223397 2.3028205 0.1039 0.104333333


# VGG_38 without BN (seed 1)
1 2.30414837 2.30284274 0.1015 0.104333333
2 2.30275138 2.30302241 0.1021 0.104333333
3 2.30253475 2.30301098 0.1016 0.104333333
4 2.30235211 2.30278813 0.1007 0.104333333
5 2.30224002 2.30277096 0.1039 0.104333333


# VGG_38 without BN (seed 2)
1 2.3053462 2.30253378 0.1042 0.109
2 2.30293507 2.30260221 0.0989 0.102333333
3 2.30272009 2.30267332 0.0984 0.0993333333
4 2.30239876 2.30255056 0.1019 0.104333333
5 2.30226912 2.30254631 0.1039 0.104333333


# VGG_38 with BN (seed 0)
1 1.63719334 1.19378428 0.3862 0.464333333
2 1.08862473 1.09368861 0.5611 0.514
3 0.867545045 0.957186202 0.6501 0.599
4 0.743253254 0.713416964 0.6883 0.685
5 0.672409527 0.642548005 0.7206 0.713


# VGG_38 with BN (seed 1)
1 1.65144666 1.26427113 0.3974 0.529666667
2 1.0440739 1.07703857 0.6033 0.551
3 0.846499535 1.00615882 0.667 0.585666667
4 0.724843341 0.692186407 0.7265 0.737
5 0.633621833 0.571827127 0.7715 0.777


# VGG_38 with BN (seed 2)
1 1.66644735 2.41062712 0.3866 0.319666667
2 1.05283423 1.26928703 0.5997 0.521
3 0.85911113 1.20434656 0.6717 0.565666667
4 0.736349617 0.693614622 0.7274 0.724666667
5 0.612187951 0.548280473 0.7894 0.798666667
EOD
$grad << EOD
# VGG_38 without BN (seed 0)
1 2.93753708e-18
2 1.75965848e-18
3 1.7687507e-18
4 1.68603441e-18
5 2.65126174e-18


# VGG_38 without BN (seed 1)
1 4.5681756e-18
2 6.27683542e-18
3 6.30710147e-18
4 8.50782015e-18
5 6.40427835e-18


# VGG_38 without BN (seed 2)
1 2.86142098e-17
2 1.67423652e-18
3 7.8811635e-19
4 1.89914469e-18
5 1.48179323e-18


# VGG_38 with BN (seed 0)
1 0.0138946051
2 0.013357901
3 0.0187177556
4 0.0145205453
5 0.0100469926


# VGG_38 with BN (seed 1)
1 0.0116782441
2 0.0131608218
3 0.0322253131
4 0.0126415197
5 0.00889408293


# VGG_38 with BN (seed 2)
1 0.00925105582
2 0.0162232517
3 0.0141158316
4 0.00819349532
5 0.0145257694
EOD
set grid
set xlabel 'epoch'
set key bottom left
set xtics 1
set multiplot layout 1,3 title 'bn: VGG_38 without and with batch norm (before the activation)'
set title 'error: validation solid, training dashed'
set ylabel 'cross-entropy loss'
set key top right
plot $sum index 0 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'VGG_38 without BN (seed 0)', \
     $sum index 0 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 1 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'VGG_38 without BN (seed 1)', \
     $sum index 1 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 2 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'VGG_38 without BN (seed 2)', \
     $sum index 2 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 3 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'VGG_38 with BN (seed 0)', \
     $sum index 3 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 4 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'VGG_38 with BN (seed 1)', \
     $sum index 4 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 5 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'VGG_38 with BN (seed 2)', \
     $sum index 5 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle
set title 'accuracy: validation solid, training dashed'
set ylabel 'accuracy'
set key bottom right
plot $sum index 0 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'VGG_38 without BN (seed 0)', \
     $sum index 0 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 1 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'VGG_38 without BN (seed 1)', \
     $sum index 1 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 2 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'VGG_38 without BN (seed 2)', \
     $sum index 2 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 3 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'VGG_38 with BN (seed 0)', \
     $sum index 3 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 4 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'VGG_38 with BN (seed 1)', \
     $sum index 4 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 5 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'VGG_38 with BN (seed 2)', \
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
