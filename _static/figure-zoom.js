// A figure of a results page opens at full size when tapped or clicked: on a phone, a heatmap's numbers are
// too small to read at the column's width, and the full image can be zoomed. Images already in a link are left.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".bd-article div.cell_output img").forEach(function (img) {
    if (img.closest("a")) return;
    var a = document.createElement("a");
    a.href = img.getAttribute("src");
    a.className = "kd-zoom";
    a.title = "Open the figure at full size";
    img.parentNode.insertBefore(a, img);
    a.appendChild(img);
  });
});
