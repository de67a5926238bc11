import sharp from "sharp";
console.log(Object.keys(sharp.format).filter(k => (sharp.format as any)[k].input.buffer));
const raw = new Uint8Array(40*20*3); for (let i=0;i<40*20;i++){ raw[i*3] = (i%40)<10?255:0; }
const j = await sharp(raw,{raw:{width:40,height:20,channels:3}}).jpeg().withMetadata({orientation:6}).toBuffer();
const m = await sharp(j).metadata(); console.log(m.width,m.height,m.orientation,m.autoOrient);
const {info} = await sharp(j).autoOrient().resize(10,20,{fit:"fill", fastShrinkOnLoad:true}).raw().toBuffer({resolveWithObject:true}); console.log(info);
const {info: i2} = await sharp(j).resize(10,20,{fit:"fill"}).autoOrient().raw().toBuffer({resolveWithObject:true}); console.log(i2);
