# drawn by `study`; redraw with: gnuplot batch-size_compare.gp
if (!exists('out')) out = 'batch-size_compare.png'
set terminal pngcairo noenhanced size 1700,520 font 'sans,10'
set output out
$sum << EOD
# Batch size=100 (seed 0)
1 1.52668276 0.950450611 0.4276 0.669
2 0.886747555 0.820318244 0.684 0.698
3 0.688713641 0.627603688 0.7536 0.767333333
4 0.609932502 0.577724617 0.779 0.783666667
5 0.53160704 0.510744765 0.8094 0.796666667


# Batch size=100 (seed 1)
1 1.50666547 1.13130274 0.4671 0.577333333
2 0.847706131 0.8167989 0.6949 0.676666667
3 0.718259948 0.685631261 0.7421 0.731333333
4 0.587145455 0.530431258 0.7871 0.808666667
5 0.516829325 0.47426393 0.8154 0.827333333


# Batch size=100 (seed 2)
1 1.50921858 1.13847794 0.4657 0.600666667
2 0.812420793 0.802299678 0.719 0.709333333
3 0.678869004 0.618709077 0.7553 0.766333333
4 0.574501698 0.524277505 0.7947 0.790666667
5 0.517975279 0.477797598 0.8136 0.818666667


# Batch size=80 (seed 0)
1 1.55709177 1.04575037 0.4285 0.601
2 0.793660274 0.698282379 0.7229 0.741666667
3 0.62738808 0.55163499 0.7773 0.789666667
4 0.547453845 0.552781335 0.8069 0.795666667
5 0.482962912 0.449988217 0.8296 0.836


# Batch size=80 (seed 1)
1 1.40668008 1.11377269 0.4924 0.56
2 0.812022049 0.708117604 0.7038 0.734333333
3 0.667078255 0.78870197 0.7588 0.7
4 0.572301012 0.590441008 0.7957 0.773
5 0.501530388 0.455580656 0.8167 0.819333333


# Batch size=80 (seed 2)
1 1.5478106 1.21552689 0.4475 0.566666667
2 0.827818417 0.807958736 0.7134 0.715666667
3 0.683502075 0.725347327 0.7555 0.732333333
4 0.578216998 0.543077017 0.7929 0.787666667
5 0.507115399 0.474606082 0.8164 0.818333333


# Batch size=50 (seed 0)
1 1.39407207 1.14972699 0.4731 0.597333333
2 0.841553188 0.72579876 0.6908 0.734
3 0.664788005 0.627068753 0.7599 0.764333333
4 0.566579345 0.567421079 0.7926 0.782
5 0.493656202 0.447373916 0.8232 0.837333333


# Batch size=50 (seed 1)
1 1.38333759 1.06762557 0.4833 0.586333333
2 0.812076063 0.718169821 0.7113 0.735666667
3 0.677281652 0.773099409 0.753 0.715
4 0.588816877 0.599959839 0.7881 0.765333333
5 0.523147519 0.461436439 0.8079 0.813666667


# Batch size=50 (seed 2)
1 1.3704411 1.01263114 0.4994 0.610666667
2 0.813196833 0.747081826 0.7062 0.711666667
3 0.679941677 0.610156446 0.7521 0.772333333
4 0.582697585 0.568423775 0.7894 0.786
5 0.509452594 0.488018425 0.8165 0.812666667
EOD
$grad << EOD
# Batch size=100 (seed 0)
1 0.0310661027
2 0.0270579285
3 0.0125218794
4 0.0268898539
5 0.0223342078


# Batch size=100 (seed 1)
1 0.0322316366
2 0.0513847412
3 0.0246291926
4 0.0262667949
5 0.0236354711


# Batch size=100 (seed 2)
1 0.0153630103
2 0.0197854751
3 0.0148010055
4 0.0291922934
5 0.0188289859


# Batch size=80 (seed 0)
1 0.0529208931
2 0.0356793062
3 0.0231464886
4 0.0178233041
5 0.0296204037


# Batch size=80 (seed 1)
1 0.0351032414
2 0.0359796796
3 0.0245457146
4 0.028648117
5 0.017158011


# Batch size=80 (seed 2)
1 0.01485486
2 0.0358032973
3 0.0209096024
4 0.0351262633
5 0.0266092771


# Batch size=50 (seed 0)
1 0.0383608267
2 0.0360523796
3 0.030801837
4 0.0300052258
5 0.0412661473


# Batch size=50 (seed 1)
1 0.0231967079
2 0.102015096
3 0.0164826985
4 0.0325364403
5 0.0109021741


# Batch size=50 (seed 2)
1 0.0211244587
2 0.0297462884
3 0.0248513395
4 0.0222053268
5 0.0158532083
EOD
set grid
set xlabel 'epoch'
set key bottom left
set xtics 1
set multiplot layout 1,3 title 'batch-size: VGG_38 with BN after ReLU, batch sizes'
set title 'error: validation solid, training dashed'
set ylabel 'cross-entropy loss'
set key top right
plot $sum index 0 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'Batch size=100 (seed 0)', \
     $sum index 0 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 1 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'Batch size=100 (seed 1)', \
     $sum index 1 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 2 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'Batch size=100 (seed 2)', \
     $sum index 2 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 3 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'Batch size=80 (seed 0)', \
     $sum index 3 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 4 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'Batch size=80 (seed 1)', \
     $sum index 4 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 5 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'Batch size=80 (seed 2)', \
     $sum index 5 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 6 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'Batch size=50 (seed 0)', \
     $sum index 6 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle, \
     $sum index 7 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'Batch size=50 (seed 1)', \
     $sum index 7 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle, \
     $sum index 8 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'Batch size=50 (seed 2)', \
     $sum index 8 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle
set title 'accuracy: validation solid, training dashed'
set ylabel 'accuracy'
set key bottom right
plot $sum index 0 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'Batch size=100 (seed 0)', \
     $sum index 0 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 1 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'Batch size=100 (seed 1)', \
     $sum index 1 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 2 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'Batch size=100 (seed 2)', \
     $sum index 2 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 3 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'Batch size=80 (seed 0)', \
     $sum index 3 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 4 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'Batch size=80 (seed 1)', \
     $sum index 4 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 5 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'Batch size=80 (seed 2)', \
     $sum index 5 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 6 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'Batch size=50 (seed 0)', \
     $sum index 6 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle, \
     $sum index 7 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'Batch size=50 (seed 1)', \
     $sum index 7 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle, \
     $sum index 8 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'Batch size=50 (seed 2)', \
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
