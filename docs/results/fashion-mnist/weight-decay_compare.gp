# drawn by `study`; redraw with: gnuplot weight-decay_compare.gp
if (!exists('out')) out = 'weight-decay_compare.png'
set terminal pngcairo noenhanced size 1700,520 font 'sans,10'
set output out
$sum << EOD
# decay coefficient=0 (seed 0)
1 1.52668276 0.950450611 0.4276 0.669
2 0.886747555 0.820318244 0.684 0.698
3 0.688713641 0.627603688 0.7536 0.767333333
4 0.609932502 0.577724617 0.779 0.783666667
5 0.53160704 0.510744765 0.8094 0.796666667


# decay coefficient=0 (seed 1)
1 1.50666547 1.13130274 0.4671 0.577333333
2 0.847706131 0.8167989 0.6949 0.676666667
3 0.718259948 0.685631261 0.7421 0.731333333
4 0.587145455 0.530431258 0.7871 0.808666667
5 0.516829325 0.47426393 0.8154 0.827333333


# decay coefficient=0 (seed 2)
1 1.50921858 1.13847794 0.4657 0.600666667
2 0.812420793 0.802299678 0.719 0.709333333
3 0.678869004 0.618709077 0.7553 0.766333333
4 0.574501698 0.524277505 0.7947 0.790666667
5 0.517975279 0.477797598 0.8136 0.818666667


# decay coefficient=0.001 (seed 0)
1 1.61286113 1.18854877 0.3805 0.563666667
2 0.93000937 0.985523057 0.6635 0.619
3 0.712791053 0.68880769 0.7394 0.738666667
4 0.618330487 0.564043773 0.7777 0.79
5 0.540461749 0.494936747 0.8046 0.808666667


# decay coefficient=0.001 (seed 1)
1 1.45655458 0.989084687 0.4841 0.619
2 0.860265207 0.756766216 0.6881 0.724666667
3 0.694846772 0.614011387 0.7509 0.773
4 0.58947106 0.535855617 0.7881 0.801666667
5 0.520978177 0.483655009 0.8165 0.828666667


# decay coefficient=0.001 (seed 2)
1 1.55540046 0.858402032 0.4391 0.687
2 0.841393992 0.986497078 0.7056 0.655333333
3 0.705640514 0.6103644 0.7444 0.777333333
4 0.593094622 0.574839851 0.7853 0.788666667
5 0.529971246 0.489864156 0.804 0.803333333


# decay coefficient=0.005 (seed 0)
1 1.57584991 1.1235599 0.406 0.553666667
2 0.927337171 0.768505236 0.6552 0.714
3 0.711789859 0.644801733 0.7478 0.778
4 0.610659897 0.586873838 0.7842 0.786
5 0.528269866 0.499599835 0.8179 0.820333333


# decay coefficient=0.005 (seed 1)
1 1.60382864 1.03424613 0.4246 0.608333333
2 0.887588437 0.873098205 0.6918 0.675333333
3 0.700547605 0.662927525 0.7574 0.759666667
4 0.602349033 0.627016592 0.7843 0.774
5 0.543809275 0.515449626 0.8008 0.804666667


# decay coefficient=0.005 (seed 2)
1 1.72481453 1.37187209 0.3817 0.529
2 0.868757633 0.840802771 0.693 0.688666667
3 0.715522262 0.661280489 0.7449 0.754333333
4 0.608385692 0.559043182 0.7834 0.787333333
5 0.541926951 0.51884669 0.8088 0.802333333
EOD
$grad << EOD
# decay coefficient=0 (seed 0)
1 0.0310661027
2 0.0270579285
3 0.0125218794
4 0.0268898539
5 0.0223342078


# decay coefficient=0 (seed 1)
1 0.0322316366
2 0.0513847412
3 0.0246291926
4 0.0262667949
5 0.0236354711


# decay coefficient=0 (seed 2)
1 0.0153630103
2 0.0197854751
3 0.0148010055
4 0.0291922934
5 0.0188289859


# decay coefficient=0.001 (seed 0)
1 0.0391760987
2 0.028044969
3 0.020442115
4 0.0243006814
5 0.039604259


# decay coefficient=0.001 (seed 1)
1 0.0232700363
2 0.0373019298
3 0.029661506
4 0.015755873
5 0.0226607156


# decay coefficient=0.001 (seed 2)
1 0.0260282964
2 0.0351215665
3 0.0124491162
4 0.0145131404
5 0.0274776184


# decay coefficient=0.005 (seed 0)
1 0.0232688843
2 0.0284506159
3 0.019956767
4 0.0214194785
5 0.0261793077


# decay coefficient=0.005 (seed 1)
1 0.02581806
2 0.023104503
3 0.0219679107
4 0.0235196949
5 0.0211286449


# decay coefficient=0.005 (seed 2)
1 0.0226644505
2 0.0156826018
3 0.0230719856
4 0.0255505379
5 0.0252250503
EOD
set grid
set xlabel 'epoch'
set key bottom left
set xtics 1
set multiplot layout 1,3 title 'weight-decay: VGG_38 with BN after ReLU, weight decay coefficients'
set title 'error: validation solid, training dashed'
set ylabel 'cross-entropy loss'
set key top right
plot $sum index 0 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'decay coefficient=0 (seed 0)', \
     $sum index 0 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 1 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'decay coefficient=0 (seed 1)', \
     $sum index 1 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 2 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'decay coefficient=0 (seed 2)', \
     $sum index 2 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 3 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'decay coefficient=0.001 (seed 0)', \
     $sum index 3 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 4 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'decay coefficient=0.001 (seed 1)', \
     $sum index 4 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 5 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'decay coefficient=0.001 (seed 2)', \
     $sum index 5 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 6 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'decay coefficient=0.005 (seed 0)', \
     $sum index 6 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle, \
     $sum index 7 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'decay coefficient=0.005 (seed 1)', \
     $sum index 7 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle, \
     $sum index 8 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'decay coefficient=0.005 (seed 2)', \
     $sum index 8 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle
set title 'accuracy: validation solid, training dashed'
set ylabel 'accuracy'
set key bottom right
plot $sum index 0 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'decay coefficient=0 (seed 0)', \
     $sum index 0 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 1 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'decay coefficient=0 (seed 1)', \
     $sum index 1 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 2 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'decay coefficient=0 (seed 2)', \
     $sum index 2 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 3 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'decay coefficient=0.001 (seed 0)', \
     $sum index 3 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 4 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'decay coefficient=0.001 (seed 1)', \
     $sum index 4 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 5 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'decay coefficient=0.001 (seed 2)', \
     $sum index 5 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 6 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'decay coefficient=0.005 (seed 0)', \
     $sum index 6 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle, \
     $sum index 7 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'decay coefficient=0.005 (seed 1)', \
     $sum index 7 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle, \
     $sum index 8 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'decay coefficient=0.005 (seed 2)', \
     $sum index 8 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle
set title 'mean |dL/dW| of the first conv layer (input_conv_conv_0)'
set ylabel 'mean |dL/dW|'
set logscale y
set format y '%.0e'
plot $grad index 0 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 1 notitle, \
     $grad index 1 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 1 notitle, \
     $grad index 2 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 1 notitle, \
     $grad index 3 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 2 notitle, \
     $grad index 4 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 2 notitle, \
     $grad index 5 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 2 notitle, \
     $grad index 6 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 3 notitle, \
     $grad index 7 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 3 notitle, \
     $grad index 8 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 3 notitle
unset multiplot
