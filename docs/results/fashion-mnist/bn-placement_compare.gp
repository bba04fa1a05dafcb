# drawn by `study`; redraw with: gnuplot bn-placement_compare.gp
if (!exists('out')) out = 'bn-placement_compare.png'
set terminal pngcairo noenhanced size 1700,520 font 'sans,10'
set output out
$sum << EOD
# BN before ReLU (seed 0)
1 1.63719334 1.19378428 0.3862 0.464333333
2 1.08862473 1.09368861 0.5611 0.514
3 0.867545045 0.957186202 0.6501 0.599
4 0.743253254 0.713416964 0.6883 0.685
5 0.672409527 0.642548005 0.7206 0.713


# BN before ReLU (seed 1)
1 1.65144666 1.26427113 0.3974 0.529666667
2 1.0440739 1.07703857 0.6033 0.551
3 0.846499535 1.00615882 0.667 0.585666667
4 0.724843341 0.692186407 0.7265 0.737
5 0.633621833 0.571827127 0.7715 0.777


# BN before ReLU (seed 2)
1 1.66644735 2.41062712 0.3866 0.319666667
2 1.05283423 1.26928703 0.5997 0.521
3 0.85911113 1.20434656 0.6717 0.565666667
4 0.736349617 0.693614622 0.7274 0.724666667
5 0.612187951 0.548280473 0.7894 0.798666667


# BN after ReLU (seed 0)
1 1.52668276 0.950450611 0.4276 0.669
2 0.886747555 0.820318244 0.684 0.698
3 0.688713641 0.627603688 0.7536 0.767333333
4 0.609932502 0.577724617 0.779 0.783666667
5 0.53160704 0.510744765 0.8094 0.796666667


# BN after ReLU (seed 1)
1 1.50666547 1.13130274 0.4671 0.577333333
2 0.847706131 0.8167989 0.6949 0.676666667
3 0.718259948 0.685631261 0.7421 0.731333333
4 0.587145455 0.530431258 0.7871 0.808666667
5 0.516829325 0.47426393 0.8154 0.827333333


# BN after ReLU (seed 2)
1 1.50921858 1.13847794 0.4657 0.600666667
2 0.812420793 0.802299678 0.719 0.709333333
3 0.678869004 0.618709077 0.7553 0.766333333
4 0.574501698 0.524277505 0.7947 0.790666667
5 0.517975279 0.477797598 0.8136 0.818666667
EOD
$grad << EOD
# BN before ReLU (seed 0)
1 0.0138946051
2 0.013357901
3 0.0187177556
4 0.0145205453
5 0.0100469926


# BN before ReLU (seed 1)
1 0.0116782441
2 0.0131608218
3 0.0322253131
4 0.0126415197
5 0.00889408293


# BN before ReLU (seed 2)
1 0.00925105582
2 0.0162232517
3 0.0141158316
4 0.00819349532
5 0.0145257694


# BN after ReLU (seed 0)
1 0.0310661027
2 0.0270579285
3 0.0125218794
4 0.0268898539
5 0.0223342078


# BN after ReLU (seed 1)
1 0.0322316366
2 0.0513847412
3 0.0246291926
4 0.0262667949
5 0.0236354711


# BN after ReLU (seed 2)
1 0.0153630103
2 0.0197854751
3 0.0148010055
4 0.0291922934
5 0.0188289859
EOD
set grid
set xlabel 'epoch'
set key bottom left
set xtics 1
set multiplot layout 1,3 title 'bn-placement: VGG_38, batch norm before or after the activation'
set title 'error: validation solid, training dashed'
set ylabel 'cross-entropy loss'
set key top right
plot $sum index 0 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'BN before ReLU (seed 0)', \
     $sum index 0 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 1 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'BN before ReLU (seed 1)', \
     $sum index 1 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 2 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'BN before ReLU (seed 2)', \
     $sum index 2 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 3 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'BN after ReLU (seed 0)', \
     $sum index 3 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 4 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'BN after ReLU (seed 1)', \
     $sum index 4 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 5 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'BN after ReLU (seed 2)', \
     $sum index 5 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle
set title 'accuracy: validation solid, training dashed'
set ylabel 'accuracy'
set key bottom right
plot $sum index 0 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'BN before ReLU (seed 0)', \
     $sum index 0 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 1 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'BN before ReLU (seed 1)', \
     $sum index 1 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 2 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'BN before ReLU (seed 2)', \
     $sum index 2 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 3 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'BN after ReLU (seed 0)', \
     $sum index 3 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 4 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'BN after ReLU (seed 1)', \
     $sum index 4 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 5 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'BN after ReLU (seed 2)', \
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
